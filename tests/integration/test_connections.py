"""SQLite connections follow threads without leaking when threads come and go."""

from __future__ import annotations

import gc
import os
import threading

from appliance.storage.connection import Databases, fetch_one


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def in_new_thread(work) -> None:
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


def test_connections_of_ended_threads_serve_the_next_threads(tmp_path) -> None:
    dbs = Databases(tmp_path / "identity.db", tmp_path / "ballots.db")
    try:
        in_new_thread(lambda: fetch_one(dbs.identity, "SELECT 1"))
        gc.collect()
        before = open_files()
        for _ in range(50):  # a web server retiring and starting worker threads
            in_new_thread(lambda: (fetch_one(dbs.identity, "SELECT 1"), fetch_one(dbs.ballots, "SELECT 1")))
        gc.collect()
        assert open_files() - before <= 3  # the ballots connection, opened once (file, WAL, shared memory)
        assert len(dbs._opened) == 2
    finally:
        dbs.close()


def test_threads_alive_at_once_each_have_their_own_connection(tmp_path) -> None:
    dbs = Databases(tmp_path / "identity.db", tmp_path / "ballots.db")
    fetch_one(dbs.identity, "SELECT 1")  # the file exists and is in WAL mode before workers start, as in serve
    seen: list[int] = []
    all_in = threading.Barrier(4, timeout=10)
    release = threading.Event()

    def hold() -> None:
        seen.append(id(dbs.identity))
        all_in.wait()
        release.wait(10)

    threads = [threading.Thread(target=hold) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        all_in.wait()  # raises BrokenBarrierError instead of hanging if a thread failed
        assert len(set(seen)) == 3
    finally:
        release.set()
        for thread in threads:
            thread.join(10)
        dbs.close()
