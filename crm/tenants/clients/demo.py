"""A few realistic clients for the demo tenant that ``crm up`` creates on first start."""

from __future__ import annotations

from crm.tenants.clients.tables import Client

# kind, name, phones (E.164), e-mails, status
DEMO_CLIENTS: tuple[tuple[str, str, list[str], list[str], str], ...] = (
    ("company", "ООО «Северный ветер»", ["+74957894512"], ["office@severny-veter.ru"], "client"),
    ("person", "Анна Кузнецова", ["+79123456789"], ["anna.kuznetsova@example.ru"], "prospect"),
    ("company", "Brightline Logistics Ltd", ["+442079460123"], ["hello@brightline.example"], "lead"),
    ("person", "Daniel Novak", ["+420601234567"], ["d.novak@example.cz"], "client"),
    ("company", "ИП Смирнов А. В.", ["+78432651190", "+79063217744"], [], "lead"),
)


async def seed_demo_clients(responsible_id: int) -> int:
    """Insert the demo clients inside the open tenant scope; return how many."""
    await Client.insert(
        *[
            Client(
                kind=kind,
                name=name,
                phones=phones,
                emails=emails,
                status=status,
                responsible_id=responsible_id,
            )
            for kind, name, phones, emails, status in DEMO_CLIENTS
        ]
    )
    return len(DEMO_CLIENTS)
