"""Priority queues, live: three levels with backlog, one worker, handler slots shared 8 : 3 : 1.

Every second it prints how many jobs each level started in that second and the shares so far; as the high
level runs dry its share goes to the others, so no handler idles while any level has work.
Run on the embedded emulator:  python examples/priority_jobs.py
"""

import anyio

import qfan

LEVELS = {"high": 8, "normal": 3, "low": 1}
PER_LEVEL = 150

app = qfan.App("jobs-demo")
jobs = app.priority_queue("jobs", int, levels=LEVELS)  # queues jobs-high, jobs-normal, jobs-low
started: list[str] = []


@app.worker(jobs, concurrency=8, receive_wait=1)
async def run_job(job: int, message: qfan.Message[int]) -> None:
    started.append(jobs.level_of(message))
    await anyio.sleep(0.02)  # the work


def shares(window: list[str]) -> str:
    total = len(window) or 1
    return "  ".join(f"{level} {window.count(level) / total:4.0%}" for level in LEVELS)


async def main() -> None:
    async with qfan.local(), app:
        await jobs.purge()
        for level in LEVELS:
            await jobs.send_many(range(PER_LEVEL), priority=level)
        print(f"{PER_LEVEL} jobs queued on each level; weights {LEVELS}")
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.run)
            seen, second = 0, 0
            while len(started) < PER_LEVEL * len(LEVELS):
                await anyio.sleep(1)
                second += 1
                now = started[seen:]
                seen += len(now)
                counts = "  ".join(f"{level} {now.count(level):3d}" for level in LEVELS)
                print(f"t={second:2d}s  started {counts}   shares so far: {shares(started)}")
            app.stop()
        # The high level is the first to run dry: until then every level had backlog.
        full = started[: PER_LEVEL * sum(LEVELS.values()) // max(LEVELS.values())]
        weights = "  ".join(f"{level} {w / sum(LEVELS.values()):4.0%}" for level, w in LEVELS.items())
        print(f"first {len(full)} jobs (every level had backlog): {shares(full)}   weights: {weights}")
        await jobs.delete()


if __name__ == "__main__":
    anyio.run(main)
