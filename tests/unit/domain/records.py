"""Example records in the shape of the shop's source files, fresh on every call."""

from __future__ import annotations

from typing import Any

STORE_NAME = "Большая Пикча — Магазин на ул. Лесная"
DAIRY = "🥛🥛 Молочные продукты"


def coordinates() -> dict[str, Any]:
    return {"latitude": 55.79, "longitude": 49.12}


def shop_location() -> dict[str, Any]:
    return {
        "country": "Россия",
        "city": "г. Казань",
        "street": "ул. Лесная",
        "house": "12",
        "postal_code": "420000",
        "coordinates": coordinates(),
    }


def delivery_address() -> dict[str, Any]:
    return {
        "country": "Россия",
        "city": "г. Казань",
        "street": "ул. Мира",
        "house": "9/2",
        "apartment": "23",
        "postal_code": "420001",
    }


def kbju() -> dict[str, Any]:
    return {"calories": 80.2, "protein": 19.1, "fat": 4.4, "carbohydrates": 9.8}


def manufacturer() -> dict[str, Any]:
    return {
        "name": "ООО «Ферма»",
        "country": "Россия",
        "website": "https://ferma.example",
        "inn": "8354653207",
    }


def store() -> dict[str, Any]:
    return {
        "store_id": "store-001",
        "store_name": STORE_NAME,
        "store_network": "Большая Пикча",
        "store_type_description": (
            "Супермаркет более 200 кв.м. Входит в сеть из 30 магазинов."
        ),
        "type": "offline",
        "categories": [
            "🥖🥖 Зерновые и хлебобулочные изделия",
            "🥩🥩 Мясо, рыба, яйца и бобовые",
            DAIRY,
            "🍏🍏 Фрукты и ягоды",
            "🥦🥦 Овощи и зелень",
        ],
        "manager": {
            "name": "Иванова Анна Петровна",
            "phone": "+7 (912) 345-67-89",
            "email": "anna@example.org",
        },
        "location": shop_location(),
        "opening_hours": {
            "mon_fri": "09:00-21:00",
            "sat": "10:00-20:00",
            "sun": "10:00-18:00",
        },
        "accepts_online_orders": True,
        "delivery_available": True,
        "warehouse_connected": False,
        "last_inventory_date": "2025-09-24",
    }


def customer() -> dict[str, Any]:
    return {
        "customer_id": "cus-1000",
        "first_name": "Анна",
        "last_name": "Смирнова",
        "email": "Anna.S@Example.com",
        "phone": "8 912 345 67 89",
        "birth_date": "1985-03-13",
        "gender": "female",
        "registration_date": "2025-09-24T20:46:44.824710",
        "is_loyalty_member": True,
        "loyalty_card_number": "LOYAL-B566CFC017",
        "purchase_location": shop_location(),
        "delivery_address": delivery_address(),
        "preferences": {
            "preferred_language": "ru",
            "preferred_payment_method": "cash",
            "receive_promotions": False,
        },
    }


def product() -> dict[str, Any]:
    return {
        "id": "prd-1000",
        "name": "Кефир",
        "group": DAIRY,
        "description": "...",
        "kbju": kbju(),
        "price": 54.1,
        "unit": "шт",
        "origin_country": "Россия",
        "expiry_days": 24,
        "is_organic": True,
        "barcode": "9930490056144",
        "manufacturer": manufacturer(),
    }


def purchase_item() -> dict[str, Any]:
    return {
        "product_id": "prd-1000",
        "name": "Кефир",
        "category": DAIRY,
        "quantity": 3,
        "unit": "шт",
        "price_per_unit": 54.1,
        "total_price": 162.3,
        "kbju": kbju(),
        "manufacturer": manufacturer(),
    }


def purchase() -> dict[str, Any]:
    return {
        "purchase_id": "ord-00001",
        "customer": {
            "customer_id": "cus-1000",
            "first_name": "Анна",
            "last_name": "Смирнова",
        },
        "store": {
            "store_id": "store-001",
            "store_name": STORE_NAME,
            "store_network": "Большая Пикча",
            "location": shop_location(),
        },
        "items": [purchase_item()],
        "total_amount": 162.3,
        "payment_method": "card",
        "is_delivery": False,
        "delivery_address": delivery_address(),
        "purchase_datetime": "2025-08-29T20:46:44.853623",
    }
