import anyio, msgspec, qfan

class Order(msgspec.Struct):
    id: int
    item: str

app = qfan.App("shop")                                  # endpoint, region, credentials: AWS conventions
orders = app.queue("orders", Order, dead_letter=app.queue("orders-dlq"), max_receives=5)

async def main() -> None:
    async with qfan.local(), app:                       # without qfan.local(): your AWS account
        await orders.send_many(Order(i, "pen") for i in range(100))  # 10 SendMessageBatch calls
        await orders.send(Order(100, "ink"))            # concurrent sends are coalesced into batches
        ids = set()
        async with orders.consume(prefetch=20) as messages:
            async for message in messages:              # message.body is an Order
                ids.add(message.body.id)
                await message.ack()                     # deletes; acks are batched too
                if len(ids) == 101:
                    break
        print(f"received {len(ids)} orders")

anyio.run(main)
