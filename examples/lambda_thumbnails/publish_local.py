"""What the SAM stack and an uploader do on AWS, for a local run: declare the topic, the queue subscribed to
it and its dead-letter queue, then publish three upload events (one of them not an image).

    qfan local &
    export AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 \\
        AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x
    python examples/lambda_thumbnails/publish_local.py
    qfan lambda run examples.lambda_thumbnails.app:app --queue thumbnails --until-empty
"""

import anyio

import qfan

try:
    from .app import ImageUploaded
except ImportError:  # run as a script
    from app import ImageUploaded  # type: ignore[no-redef]

setup = qfan.App("thumbnails-setup")
dead_letter = setup.queue("thumbnails-dlq")
thumbnails = setup.queue("thumbnails", ImageUploaded, dead_letter=dead_letter, max_receives=5)
images = setup.topic("images", ImageUploaded)
setup.subscribe(images, thumbnails)


async def main() -> None:
    async with setup:
        await images.publish_many(
            [
                ImageUploaded("a.jpg", "jpeg", 5_000_000),
                ImageUploaded("b.png", "png", 80_000),
                ImageUploaded("c.gif", "gif", 20_000),
            ]
        )
    print("published 3 upload events to 'images'; thumbnails holds them")


if __name__ == "__main__":
    anyio.run(main)
