"""The Order aggregate of the seed notes, as an esctl model.

    esctl --model sample_streams/orders/model.py replay order-1

State is a fold over the order's events; commands check the order's rules against
that state and return new events. Everything here is plain Python: the tests call
`Order.decide` and `Order.fold` with no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from esctl.aggregates import Aggregate, CommandRejected, command, evolve, upcaster
from esctl.subscriptions import Published


@dataclass(frozen=True)
class Line:
    product_id: str
    quantity: int
    price: Decimal  # exact: 29.99 * 2 + 19.99 is 79.97


@dataclass(frozen=True)
class OrderState:
    status: str | None = None  # None until created; then created, confirmed, shipped
    customer_id: str | None = None
    lines: list[Line] = field(default_factory=list)
    total: Decimal = Decimal("0")
    tracking_number: str | None = None


def order_total(lines: list[Line]) -> Decimal:
    return sum((line.price * line.quantity for line in lines), Decimal("0"))


class Order(Aggregate):
    category = "order"
    initial = OrderState
    snapshot_every = 100  # long-lived orders get a snapshot every 100 events

    # --- evolve: event -> new state (never rejects: the event already happened) ---

    @evolve("OrderCreated")
    def created(state: OrderState, data: dict[str, Any]) -> OrderState:
        lines = [Line(x["product_id"], int(x["quantity"]), Decimal(str(x["price"]))) for x in data["lines"]]
        return replace(
            state, status="created", customer_id=data["customer_id"], lines=lines, total=order_total(lines)
        )

    @evolve("OrderConfirmed")
    def confirmed(state: OrderState, data: dict[str, Any]) -> OrderState:
        return replace(state, status="confirmed")

    @evolve("OrderShipped")
    def shipped(state: OrderState, data: dict[str, Any]) -> OrderState:
        return replace(state, status="shipped", tracking_number=data["tracking_number"])

    # --- commands: check the rules against the state, return the new events -------

    @command("create")
    def create(state: OrderState, args: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if state.status is not None:
            raise CommandRejected(f"the order already exists (status: {state.status})")
        customer_id = args.get("customer_id")
        if not isinstance(customer_id, str) or not customer_id:
            raise CommandRejected("create needs a customer_id")
        lines = args.get("lines")
        if not isinstance(lines, list) or not lines:
            raise CommandRejected("create needs at least one line")
        return [("OrderCreated", {"customer_id": customer_id, "lines": [_line(x) for x in lines]})]

    @command("confirm")
    def confirm(state: OrderState, args: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if state.status != "created":
            raise CommandRejected(f"only a created order can be confirmed (status: {state.status or 'none'})")
        return [("OrderConfirmed", {})]

    @command("ship")
    def ship(state: OrderState, args: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if state.status != "confirmed":
            raise CommandRejected(f"can only ship confirmed orders (status: {state.status or 'none'})")
        tracking = args.get("tracking_number")
        if not isinstance(tracking, str) or not tracking:
            raise CommandRejected("ship needs a tracking_number")
        return [("OrderShipped", {"tracking_number": tracking})]


def _line(line: Any) -> dict[str, Any]:
    """A command's line, checked, with the price as exact decimal text."""
    try:
        product_id, quantity, price = line["product_id"], line["quantity"], Decimal(str(line["price"]))
    except (TypeError, KeyError, InvalidOperation):
        raise CommandRejected(
            f"a line needs product_id, quantity and a decimal price, got {line!r}"
        ) from None
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise CommandRejected(f"quantity must be a positive integer, got {quantity!r}")
    if not price.is_finite() or price < 0:
        raise CommandRejected(f"price must be a non-negative amount, got {line['price']!r}")
    return {"product_id": product_id, "quantity": quantity, "price": str(price)}


# --- event versioning ---------------------------------------------------------------


@upcaster("OrderCreated", from_schema=1)
def order_created_items_to_lines(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 called the customer `customer` and the lines `items` (sku, qty,
    unit_price); schema 2 is what `create` writes today."""
    return {
        "customer_id": data["customer"],
        "lines": [
            {"product_id": item["sku"], "quantity": item["qty"], "price": item["unit_price"]}
            for item in data["items"]
        ],
    }


# The integration event other services read: a published contract, versioned apart
# from the domain event (`esctl contracts --check` holds the log to it).
order_shipped_v1 = Published(
    "OrderShipped",
    name="orders.shipped",
    version=1,
    fields={"order_id": str, "tracking": str},
    shape=lambda event: {
        "order_id": event.stream.partition("-")[2],
        "tracking": event.data["tracking_number"],
    },
)
