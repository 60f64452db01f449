"""Workers for the image example: one upload event, three independent consumers.

Until topics land, the producer sends the event to each queue itself; each worker runs on its own.
Run on the embedded emulator:  python examples/image_workers.py
"""

import anyio
import msgspec

import qfan


class ImageUploaded(msgspec.Struct):
    key: str
    kind: str
    size: int


app = qfan.App("media")
thumbnails = app.queue("thumbnails", ImageUploaded, dead_letter=app.queue("thumbnails-dlq"))
faces = app.queue("faces", ImageUploaded)
metadata = app.queue("metadata", ImageUploaded, retention=14 * 24 * 3600)
done: list[str] = []


@app.worker(thumbnails, concurrency=32)
async def make_thumbnail(event: ImageUploaded) -> None:
    if event.kind not in ("jpeg", "png"):
        raise qfan.Reject(f"cannot thumbnail {event.kind}")  # straight to thumbnails-dlq, with the reason
    done.append(f"thumbnail {event.key}")


@app.worker(faces, concurrency=8)
def find_faces(event: ImageUploaded) -> None:  # a plain def runs in a thread
    done.append(f"faces {event.key}")


@app.worker(metadata)
async def record_metadata(event: ImageUploaded, message: qfan.Message[ImageUploaded]) -> None:
    done.append(f"metadata {event.key} (receive #{message.receive_count})")


async def main() -> None:
    events = [ImageUploaded("a.jpg", "jpeg", 5_000_000), ImageUploaded("b.gif", "gif", 20_000)]
    async with qfan.local(), app:
        for queue in (thumbnails, faces, metadata):
            await queue.send_many(events)
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.run)
            while app.stats()["make_thumbnail"].dead_lettered + len(done) < 6:  # noqa: ASYNC110
                await anyio.sleep(0.1)
            app.stop()
    print("\n".join(sorted(done)))
    print({name: stats.summary() for name, stats in app.stats().items()}["make_thumbnail"])


if __name__ == "__main__":
    anyio.run(main)
