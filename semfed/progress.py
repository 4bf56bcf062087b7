"""Progress bars (tqdm, stderr): rounds with loss, accuracy and seconds per round; any loop.

tqdm's ``close()`` draws the finished bar once more, at the overall rate, after
the step that completed it has already been drawn; in a log or a pipe, and in
a terminal narrower than the line, that shows the last line twice. So the
completing step only counts, and ``close()`` draws the one final line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def _advance(bar: Any) -> None:
    """One step of ``bar``; the step that completes it is drawn by ``close()`` only."""
    if bar.total is not None and bar.n + 1 >= bar.total:
        bar.n += 1
    else:
        bar.update(1)


def progress_over(items: Iterable[T], desc: str, unit: str) -> Iterator[T]:
    """Yield ``items`` under a tqdm bar on stderr that ends with one line.

    Input
    -----
    items : iterable with a length (a list)
    desc, unit : str
        tqdm's label and unit.
    """
    from tqdm.auto import tqdm

    items = list(items)
    bar = tqdm(total=len(items), desc=desc, unit=unit, dynamic_ncols=True)
    try:
        for item in items:
            yield item
            _advance(bar)
    finally:
        bar.close()


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
        _advance(self._bar)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
