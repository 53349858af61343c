"""Evaluation and training data, and training: nothing here runs on the robot.

- `synth`: dialog streams of espeak-ng (or recorded) users and an espeak-ng robot, with session labels,
  for the episodic trigger's training and evaluation and for fine-tuning streams;
- `espeak_variants`: generated espeak-ng voice variants for those streams;
- `tagger_train`: trains and tunes the trigger tagger that `memory/tagger.py` runs.
"""
