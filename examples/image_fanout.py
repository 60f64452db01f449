"""The seed's fanout: image events published once to a topic, delivered to three queues, each consumed.

Thumbnails only get JPEG and PNG images (a filter policy on the ``kind`` attribute); faces and metadata get
everything. Run as is on the embedded emulator:  python examples/image_fanout.py
On AWS: ``qfan declare examples.image_fanout:app --dry-run``, then ``qfan run examples.image_fanout:app``.
"""

from collections import Counter

import anyio
import msgspec

import qfan


class ImageUploaded(msgspec.Struct):
    key: str
    kind: str  # "jpeg", "png", "gif", ...
    size: int


app = qfan.App("media")
images = app.topic("images", ImageUploaded)
thumbnails = app.queue("thumbnails", ImageUploaded, dead_letter=app.queue("thumbnails-dlq"))
faces = app.queue("faces", ImageUploaded)
metadata = app.queue("metadata", ImageUploaded, retention=14 * 24 * 3600)
app.subscribe(images, thumbnails, filter_policy={"kind": ["jpeg", "png"]})
app.subscribe(images, faces)
app.subscribe(images, metadata, raw=False)  # SNS's JSON envelope: qfan unwraps it on receive
handled: Counter[str] = Counter()


@app.worker(thumbnails, concurrency=32)
async def make_thumbnail(event: ImageUploaded) -> None:
    handled["thumbnails"] += 1


@app.worker(faces, concurrency=8)
async def find_faces(event: ImageUploaded) -> None:
    handled["faces"] += 1


@app.worker(metadata)
async def record_metadata(event: ImageUploaded, message: qfan.Message[ImageUploaded]) -> None:
    assert message.sns is not None  # delivered in an envelope: the topic is known
    handled["metadata"] += 1


async def main() -> None:
    kinds = ["jpeg", "png", "gif"] * 4
    uploads = [ImageUploaded(f"img-{i}.{kind}", kind, 1000 * i) for i, kind in enumerate(kinds)]
    async with qfan.local(), app:
        for plan_item in await app.plan():
            print(plan_item.line())
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.run)
            for upload in uploads:  # each published once
                await images.publish(upload, attributes={"kind": upload.kind})
            while sum(handled.values()) < 8 + 12 + 12:  # noqa: ASYNC110 - a demo's simple wait
                await anyio.sleep(0.1)
            app.stop()
    print(f"published {len(uploads)} events: {dict(sorted(handled.items()))}")


if __name__ == "__main__":
    anyio.run(main)
