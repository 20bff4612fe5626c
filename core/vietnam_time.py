"""Vietnam's clock: UTC+7. Standard library only, so the pure policy can use it."""

from __future__ import annotations

from datetime import timedelta, timezone

# Vietnam has kept UTC+7 without daylight saving since 1975; a fixed offset needs no tz database.
VIETNAM_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
