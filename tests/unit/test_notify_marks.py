"""The notifier's news count (`notify.Notifier.news_mark`): a node's poll may skip its look only while
nothing was announced for it or for all since its last fruitless look."""

from __future__ import annotations

import asyncio
import threading

from thresher.server.notify import Notifier


def test_a_look_is_skipped_only_while_nothing_was_announced_since() -> None:
    notifier = Notifier()
    assert notifier.news_since_look(7)  # never looked
    notifier.looked(7, notifier.news_mark(7))
    assert not notifier.news_since_look(7)
    notifier.node_changed(8)  # news for another node
    assert not notifier.news_since_look(7)
    notifier.node_changed(7)
    assert notifier.news_since_look(7)
    notifier.looked(7, notifier.news_mark(7))
    notifier.tasks_ready(3)  # news for all
    assert notifier.news_since_look(7) and notifier.news_since_look(8)


def test_news_between_the_mark_and_the_look_is_not_lost() -> None:
    notifier = Notifier()
    mark = notifier.news_mark(7)  # read before the look
    notifier.tasks_ready()  # announced while it looked
    notifier.looked(7, mark)
    assert notifier.news_since_look(7)


def test_a_look_that_found_something_or_a_registration_forgets_the_mark() -> None:
    notifier = Notifier()
    notifier.looked(7, notifier.news_mark(7))
    notifier.looked(7, None)
    assert notifier.news_since_look(7)


def test_the_periodic_look_knows_which_waiting_nodes_keep_tasks_ahead() -> None:

    async def main() -> tuple[dict[int, int], dict[int, int]]:
        notifier = Notifier()
        notifier.register(1)
        ahead = notifier.register(2, ahead=4)
        seen = notifier.ahead_of([1, 2, 3])
        notifier.unregister(ahead)
        return seen, notifier.ahead_of([1, 2, 3])

    # in a thread of its own: an event loop may already run in this one (another test of the worker)
    out: list[tuple[dict[int, int], dict[int, int]]] = []
    thread = threading.Thread(target=lambda: out.append(asyncio.run(main())))
    thread.start()
    thread.join(10)
    ((seen, after),) = out
    assert seen == {2: 4}  # housekeeping.look_for_news counts node 2's room 4 cores larger
    assert after == {}
