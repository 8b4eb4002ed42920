"""The rooms a round's candidate read serves (`dispatch_reads.read_rooms`), and the decoded holdings of a
node's live attempts (`dispatch_reads.held`): pure, without a database."""

from __future__ import annotations

from thresher.server.dispatch_reads import Room, held, read_rooms

CPU = frozenset({""})
GPU = frozenset({"", "@gpu"})


def test_a_room_another_holds_adds_nothing() -> None:
    rooms = read_rooms([Room(CPU, 8, 32_000, 0), Room(CPU, 1, 18_000, 0), Room(CPU, 8, 32_000, 0)])
    assert rooms == [Room(CPU, 8, 32_000, 0)]


def test_a_gpu_node_short_of_cores_and_an_idle_cpu_node_read_no_gpu_task() -> None:
    # a GPU task (4 cores, 1 GPU, pool gpu) fits neither room; one room of the largest of each would hold it
    rooms = read_rooms([Room(CPU, 8, 32_000, 0), Room(GPU, 1, 50_000, 2)])
    assert sorted(rooms, key=lambda r: r.cores) == [Room(GPU, 1, 50_000, 2), Room(CPU, 8, 32_000, 0)]
    assert not any(r.cores >= 4 and r.gpus >= 1 and "@gpu" in r.keys for r in rooms)


def test_past_the_most_rooms_one_holds_them_all() -> None:
    rooms = read_rooms([Room(frozenset({f"t{i}"}), i + 1, 1000 * (5 - i), 0) for i in range(5)], most=4)
    assert rooms == [Room(frozenset({"t0", "t1", "t2", "t3", "t4"}), 5, 5000, 0)]
    assert read_rooms([]) == []


def test_holdings_are_decoded_from_their_stored_text() -> None:
    assert held("[1]", '[["project:1", 4, 1, 0], ["limit:katana", 0, 0, 1], ["limit:katana", 0, 0, 2]]') == (
        (1,), (("katana", 3),))
    assert held("[]", None) == ((), ())
    assert held(None, "null") == ((), ())
