"""ClickHouse adapters: the warehouse on chDB or a server."""

from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse

__all__ = ["ClickHouseWarehouse"]
