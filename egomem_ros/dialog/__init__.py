"""EgoMem's dialog process: the moshi-family full-duplex runtime with pinned MemChunk regions (`engine`,
`pinned_memory`, `pinned_attention`), the cascaded chat-LLM mode (`cascaded`) and the external mode's
system prompt (`prompt`). See docs/dialog.md. Importing this package loads neither torch nor moshi."""
