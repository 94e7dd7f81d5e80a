"""How to read a store's own export as it is: its column names, its returns, its guest rows.

A shop's export rarely says ``customer_id``: the UCI Online Retail log says ``CustomerID``,
``StockCode``, ``InvoiceDate``, ``Quantity``. A :class:`StoreFormat` maps the loader's
fields to the file's own columns, so nobody rewrites the file and every error still names
the file, line and the file's own column. It also says what the export's quirks mean:

- ``returns``: ``"error"`` (the default: a quantity must be positive, a negative one stops
  the run naming its line) or ``"net"`` (a negative quantity is a return and is taken off
  the customer's purchases of the item, see :func:`recommender.weights.net_returns`);
- ``rows_without_customer``: ``"error"`` (the default: an empty customer id stops the run)
  or ``"skip"`` (guest purchases, which no customer can be credited with, are dropped and
  counted as "no customer");
- ``not_products``: item codes that are lines of an invoice but not products (postage,
  fees, discounts, manual adjustments): their rows are dropped and counted as "not a
  product", so they are neither learned from nor recommended.

On the command line: ``--columns customer_id=CustomerID,item_id=StockCode``, ``--returns
net``, ``--rows-without-customer skip``, or all of it in a JSON file (``--columns-file``)::

    {"columns": {"customer_id": "CustomerID", "item_id": "StockCode", "name": "Description"},
     "returns": "net", "rows_without_customer": "skip", "not_products": ["POST", "M", "D"]}

Options given on the command line override the file's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

PURCHASE_FIELDS = ("customer_id", "item_id", "timestamp", "quantity", "event_type")
#: Mapped, these build the model's catalog from the purchase file when no --catalog is given.
CATALOG_FIELDS = ("name", "category", "price")
FIELDS = PURCHASE_FIELDS + CATALOG_FIELDS
RETURNS = ("error", "net")
ROWS_WITHOUT_CUSTOMER = ("error", "skip")
_FILE_KEYS = ("columns", "returns", "rows_without_customer", "not_products")


@dataclass(frozen=True)
class StoreFormat:
    """The loader's fields mapped to a file's own columns, and what returns and guest rows mean.

    ``columns`` maps a field (:data:`FIELDS`) to the file's column; a field not mapped is
    read from the column of its own name, when there is one.
    """

    columns: Mapping[str, str] = field(default_factory=dict)
    returns: str = "error"
    rows_without_customer: str = "error"
    not_products: tuple[str, ...] = ()

    def __post_init__(self):
        unknown = sorted(set(self.columns) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r} in the column mapping; the fields are {', '.join(FIELDS)}")
        for name, column in self.columns.items():
            if not isinstance(column, str) or not column.strip():
                raise ValueError(f"field {name!r} must be mapped to a column name, not {column!r}")
        shared = sorted({c for c in self.columns.values() if list(self.columns.values()).count(c) > 1})
        if shared:
            raise ValueError(f"column {shared[0]!r} is mapped to more than one field")
        if self.returns not in RETURNS:
            raise ValueError(f"returns must be one of {', '.join(RETURNS)}, not {self.returns!r}")
        if self.rows_without_customer not in ROWS_WITHOUT_CUSTOMER:
            raise ValueError(f"rows_without_customer must be one of {', '.join(ROWS_WITHOUT_CUSTOMER)}, not {self.rows_without_customer!r}")
        if isinstance(self.not_products, str) or not all(isinstance(code, str) and code for code in self.not_products):
            raise ValueError(f"not_products must be a list of item codes, not {self.not_products!r}")

    def source(self, name: str) -> str:
        """The file's column that holds field ``name``."""
        return self.columns.get(name, name)

    @property
    def catalog_in_data(self) -> bool:
        """Whether the purchase file also carries catalog fields (names, categories, prices)."""
        return any(name in self.columns for name in CATALOG_FIELDS)

    @property
    def is_plain(self) -> bool:
        return not self.columns and self.returns == "error" and self.rows_without_customer == "error" and not self.not_products

    def with_options(self, *, columns: Mapping[str, str] | None = None, returns: str | None = None,
                     rows_without_customer: str | None = None) -> StoreFormat:
        """This format with the given options overriding (column by column for ``columns``)."""
        return replace(
            self,
            columns={**self.columns, **(columns or {})},
            returns=returns or self.returns,
            rows_without_customer=rows_without_customer or self.rows_without_customer,
        )

    def to_dict(self) -> dict:
        return {"columns": dict(self.columns), "returns": self.returns, "rows_without_customer": self.rows_without_customer,
                "not_products": list(self.not_products)}

    @classmethod
    def from_dict(cls, values: Mapping) -> StoreFormat:
        """From the JSON shape above; raises ValueError naming what is wrong."""
        if not isinstance(values, Mapping):
            raise ValueError("must be a JSON object such as {\"columns\": {\"customer_id\": \"CustomerID\"}}")
        unknown = sorted(set(values) - set(_FILE_KEYS))
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}; the keys are {', '.join(_FILE_KEYS)}")
        columns = values.get("columns", {})
        if not isinstance(columns, Mapping):
            raise ValueError("\"columns\" must be an object mapping fields to the file's column names")
        not_products = values.get("not_products", [])
        if not isinstance(not_products, list):
            raise ValueError("\"not_products\" must be a list of item codes, such as [\"POST\", \"M\"]")
        return cls(dict(columns), values.get("returns", "error"), values.get("rows_without_customer", "error"), tuple(not_products))

    @classmethod
    def read(cls, path) -> StoreFormat:
        """Read a JSON store format file; ValueError naming the file when it is unusable."""
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ValueError(f"{path} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not valid JSON ({error})") from None
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None


def parse_columns(text: str) -> dict[str, str]:
    """``"customer_id=CustomerID,item_id=StockCode"`` as a mapping; ValueError when malformed."""
    columns: dict[str, str] = {}
    for pair in (part.strip() for part in text.split(",")):
        if not pair:
            continue
        name, sep, column = (piece.strip() for piece in pair.partition("="))
        if not sep or not name or not column:
            raise ValueError(f"--columns {pair!r} must look like FIELD=COLUMN (fields: {', '.join(FIELDS)})")
        if name in columns:
            raise ValueError(f"--columns maps {name!r} twice")
        columns[name] = column
    return columns
