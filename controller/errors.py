"""User-facing errors: one clear line, never a traceback."""


class KendaliError(Exception):
    """An error the user can fix (bad file, bad flag, bad field).

    ``where`` names the file or source; ``field`` the offending field path.
    """

    def __init__(self, problem: str, where: str = "", field: str = "") -> None:
        self.problem = problem
        self.where = where
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.where, self.field) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.problem}" if prefix else self.problem
