"""Ordered bookings: each customer's bookings are handled one at a time, in order; customers in parallel.

Run it on the embedded emulator:  python examples/booking_fifo.py
Against AWS (or any endpoint), run the workers with:  qfan run examples.booking_fifo:app
"""

import random
from collections import defaultdict

import anyio
import msgspec

import qfan


class Booking(msgspec.Struct):
    customer: str
    seq: int
    seat: str


app = qfan.App("bookings")
dead_letters = app.queue("bookings-dlq.fifo")
bookings = app.queue("bookings.fifo", Booking, content_based_dedup=True, dead_letter=dead_letters)
handled: dict[str, list[int]] = defaultdict(list)


# concurrency = customers handled at once; receive_wait=1 because moto's FIFO long polls
# do not notice groups freed while they wait (real SQS does: keep the default there).
@app.worker(bookings, concurrency=16, receive_wait=1)
async def book(booking: Booking, message: qfan.Message[Booking]) -> None:
    await anyio.sleep(random.uniform(0, 0.02))  # work of varying length
    handled[booking.customer].append(booking.seq)


async def main() -> None:
    customers = [f"customer-{i}" for i in range(8)]
    async with qfan.local(), app:
        for seq in range(10):  # interleaved: c0#0, c1#0, ..., c7#0, c0#1, ...
            for customer in customers:
                await bookings.send(Booking(customer, seq, f"{seq}{customer[-1]}"), group_id=customer)
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.run)
            while sum(map(len, handled.values())) < 80:  # noqa: ASYNC110 - a demo's simple wait
                await anyio.sleep(0.1)
            app.stop()
    in_order = all(seqs == list(range(10)) for seqs in handled.values())
    total = sum(map(len, handled.values()))
    print(f"{total} bookings for {len(handled)} customers, each in order: {in_order}")


if __name__ == "__main__":
    anyio.run(main)
