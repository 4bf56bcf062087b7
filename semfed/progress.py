"""A progress bar over rounds: round, loss, accuracy and seconds per round (tqdm, stderr)."""

from __future__ import annotations

from typing import Any


class RoundProgress:
    def __init__(self, total: int, start: int = 0, enabled: bool = True) -> None:
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total, initial=start, desc="rounds", unit="round", dynamic_ncols=True
            )
        self._acc: float | None = None

    def update(self, record: dict[str, Any]) -> None:
        if self._bar is None:
            return
        if "test_acc" in record:
            self._acc = record["test_acc"]
        post = {"loss": f"{record['train_loss']:.3f}", "s/round": f"{record['round_s']:.1f}"}
        if self._acc is not None:
            post["acc"] = f"{self._acc:.3f}"
        self._bar.set_postfix(post, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
