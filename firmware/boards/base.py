"""The board interface: one way to run a built firmware, whatever runs it (a native process, QEMU, a real DK).

A board has a name, the build target it runs (`Board.target`: "host" or "cortex-m4"), `available()` -> (ok, reason),
`timeout_for(instructions)` -> seconds to let a run of at most that many instructions go on, and
`run(binary, timeout_s)` -> RunResult, the one typed result every board returns and every caller reads. A board
that cannot run raises BoardError (or a subclass). Boards are chosen by name through firmware.boards.get_board.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from vocabulary.phases import PHASES

from ..protocol import Report, parse


class BoardError(RuntimeError):
    """A board could not run the firmware (not available, crashed, ...); the message is one line."""


class FirmwareTimeout(BoardError):
    """The firmware did not finish within the time limit (the run was killed).

    FirmwareTimeout(board, timeout_s, partial_output) words the message as "<board>: firmware did not finish
    within <timeout_s> s"; FirmwareTimeout(message, output=...) takes a ready one-line message."""

    def __init__(self, board: str, timeout_s: float | None = None, partial_output: str = "", *,
                 output: str | None = None):
        message = board if timeout_s is None else f"{board}: firmware did not finish within {timeout_s:g} s"
        super().__init__(message)
        self.board = board if timeout_s is not None else ""
        self.timeout_s = timeout_s
        self.partial_output = output if output is not None else partial_output
        self.output = self.partial_output


@dataclass
class RunResult:
    lines: list[dict]  # the protocol's JSON objects, in order
    exit_code: int | None
    stdout_raw: str  # everything the firmware wrote, noise included
    instructions: dict[str, int | None]  # phase -> retired instructions (qemu-an386 plugin), None where unknown
    cycles: dict[str, int] | None  # phase -> CPU cycles where the board has a cycle counter (silicon)
    wall_s: float
    board: str
    versions: dict[str, str] = field(default_factory=dict)  # toolchain / emulator / probe versions
    host_ns: dict[str, int] | None = None  # host board: phase -> ns of a monotonic clock (not cycles)
    # qemu-an386: a static Cortex-M4 cycle estimate per phase and the time it gives at the emulated clock - an
    # estimate, never measured cycles; the sources say how it was made (or why it was not)
    cycles_estimate: dict[str, int] | None = None
    cycles_estimate_source: str | None = None
    seconds_estimate: dict[str, float] | None = None
    seconds_estimate_source: str | None = None
    # a board with a power meter (nrf52840dk with a PPK2): energy per phase and how it was measured
    energy_mj: dict[str, float] | None = None
    energy_source: str | None = None

    def report(self) -> Report:
        """The validated measurements (raises protocol.ProtocolError on malformed or truncated output)."""
        return parse(self.stdout_raw, cycles_are_ns=self.host_ns is not None or self.board == "host")


def no_instructions() -> dict[str, int | None]:
    return {phase: None for phase in PHASES}


class Board:
    """Base class of the boards; subclasses set name and target and implement available() and run()."""

    name: str = ""
    target: str = ""  # the build target whose binaries this board runs: "host" or "cortex-m4"
    platform: str | None = None  # cortex-m4 platform the binary must be built with ("qemu", "nrf52840")
    clock_hz: float | None = None  # the CPU clock where the board counts real cycles (silicon); None: no clock

    def available(self) -> tuple[bool, str]:
        raise NotImplementedError

    def timeout_for(self, instructions_upper_bound: float) -> float:
        """Seconds to let a run of at most `instructions_upper_bound` guest instructions go on before killing it."""
        raise NotImplementedError

    def run(self, binary, timeout_s: float = 60.0) -> RunResult:
        raise NotImplementedError

    def check_binary(self, binary) -> None:
        if getattr(binary, "target", self.target) != self.target:
            raise BoardError(f"board {self.name} runs {self.target} binaries, got a {binary.target} build")
        if self.platform and getattr(binary, "platform", self.platform) not in (None, self.platform):
            raise BoardError(f"board {self.name} needs a build for platform {self.platform}, "
                             f"got {binary.platform}")

    def __repr__(self) -> str:
        return f"<board {self.name} ({self.target})>"
