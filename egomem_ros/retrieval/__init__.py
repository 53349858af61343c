"""EgoMem's retrieval process: who is present (face/voice) and what the dialog asked for (Level-2)."""
