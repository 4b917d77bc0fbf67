"""The firmware side of microtl-dse: code generation, build, boards and the output protocol (docs/firmware.md)."""
