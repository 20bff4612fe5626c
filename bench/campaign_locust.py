"""Locust profile of a vaccination campaign day (not a test; bench/campaign.py runs it).

    CAMPAIGN_PLAN=plan.json .venv/bin/locust -f bench/campaign_locust.py --headless \\
        -u 200 -r 40 -t 60s --host http://127.0.0.1:8000 --csv out

Three kinds of people, by weight of the users locust starts: citizens reading their own record
on the phone app (80 %), family doctors reading and updating their registered people (12 %),
commune stations looking children up, uploading the session's doses and reading their worklist
(8 %). Every request carries a real token bench/campaign.py minted through the real endpoints
(plan file: CAMPAIGN_PLAN); nothing here touches the database or imports the app (locust
monkey-patches the standard library with gevent on import).

A request counts as failed when its status is not the one the route promises (and for a batch,
when any of its items failed): 0 errors at the measured capacity means exactly that.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import secrets
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, task

API = "/api/v1"


def _load_plan() -> dict[str, Any]:
    path = os.environ.get("CAMPAIGN_PLAN")
    if not path:  # imported to list the user classes: an empty plan
        return {"citizens": [], "doctor_tokens": [], "doctor_entries": [], "patients": [],
                "station_tokens": [], "health_ids": [], "batches": [], "facility_id": ""}
    return dict(json.loads(Path(path).read_text(encoding="utf-8")))


PLAN = _load_plan()
# The worklist in the steady mix (CAMPAIGN_WORKLIST=mix; bench/campaign.py --worklist mix): one
# read of a large commune's worklist holds a worker for seconds, so by default stations read it
# in the morning, before the load, and bench/campaign.py times that read on its own.
WORKLIST_WEIGHT = 1 if os.environ.get("CAMPAIGN_WORKLIST") == "mix" else 0


_TURNS = {kind: itertools.count() for kind in ("citizens", "doctor_tokens", "station_tokens")}


def _next(kind: str) -> Any:
    """Users take the plan's people in turn: each doctor and station user holds a token of its
    own while there are enough (per-token rate limits are per person, as in the field)."""
    pool = PLAN[kind]
    return pool[next(_TURNS[kind]) % len(pool)]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}


class _Checked(FastHttpUser):
    """Requests that fail unless the answer has the status the route promises."""

    abstract = True

    def call(self, method: str, path: str, *, name: str, expect: int = 200,
             headers: dict[str, str], body: str | None = None) -> Any:
        if body is not None:
            headers = {**headers, "Content-Type": "application/json"}
        with self.client.request(method, path, name=name, headers=headers, data=body,
                                 catch_response=True) as answer:
            if answer.status_code == 0:
                answer.failure(f"no answer: {answer.error!r}")
            elif answer.status_code != expect:
                answer.failure(f"{answer.status_code} (expected {expect})")
            return answer


class Citizen(_Checked):
    """A person checking their own record and vaccinations during the campaign."""

    weight = 80
    wait_time = between(1, 3)

    def on_start(self) -> None:
        me = _next("citizens")
        self.me = me["id"]
        self.headers = _bearer(me["token"])

    @task(3)
    def summary(self) -> None:
        self.call("GET", f"{API}/citizens/{self.me}/summary", headers=self.headers,
                  name="citizen: GET …/summary")

    @task(2)
    def entry_list(self) -> None:
        section = random.choice(("observations", "immunizations", "conditions"))
        self.call("GET", f"{API}/citizens/{self.me}/{section}", headers=self.headers,
                  name="citizen: GET …/{section} (list)")

    @task(2)
    def vaccination_card(self) -> None:
        self.call("GET", f"{API}/citizens/{self.me}/vaccination-card", headers=self.headers,
                  name="citizen: GET …/vaccination-card")

    @task(1)
    def schedule(self) -> None:
        self.call("GET", f"{API}/citizens/{self.me}/immunization-schedule",
                  headers=self.headers, name="citizen: GET …/immunization-schedule")

    @task(2)
    def notifications(self) -> None:
        self.call("GET", f"{API}/me/notifications?limit=20", headers=self.headers,
                  name="citizen: GET /me/notifications")


class Doctor(_Checked):
    """A family doctor seeing registered people: reads an entry or a summary, records a blood
    pressure or a diagnosis (with an Idempotency-Key, as the clinic app sends them)."""

    weight = 12
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.headers = _bearer(_next("doctor_tokens"))

    @task(6)
    def entry(self) -> None:
        self.call("GET", random.choice(PLAN["doctor_entries"]), headers=self.headers,
                  name="doctor: GET …/{section}/{id}")

    @task(2)
    def summary(self) -> None:
        patient = random.choice(PLAN["patients"])
        self.call("GET", f"{API}/citizens/{patient}/summary", headers=self.headers,
                  name="doctor: GET …/summary")

    def _create(self, section: str, content: dict[str, Any]) -> None:
        patient = random.choice(PLAN["patients"])
        headers = {**self.headers, "Idempotency-Key": "campaign-" + secrets.token_hex(12)}
        self.call("POST", f"{API}/citizens/{patient}/{section}", expect=201, headers=headers,
                  body=json.dumps(content), name=f"doctor: POST …/{section}")

    @task(3)
    def create_observation(self) -> None:
        systolic = random.randint(105, 165)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self._create("observations", {
            "kind": "blood-pressure", "systolic": systolic,
            "diastolic": random.randint(60, min(100, systolic - 25)), "unit": "mm[Hg]",
            "effective_at": now.isoformat(), "method": "clinic"})

    @task(1)
    def create_condition(self) -> None:
        onset = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=random.randint(0, 30))
        self._create("conditions", {"icd10_code": random.choice(("I10", "E11.9", "J45.9")),
                                    "clinical_status": "active",
                                    "onset_date": onset.isoformat()})


class Station(_Checked):
    """A commune health station's software: looks children up by health ID as they arrive,
    uploads the session's doses in one batch, and reads the worklist of who is due."""

    weight = 8
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.headers = _bearer(_next("station_tokens"))

    @task(20)
    def lookup(self) -> None:
        body = json.dumps({"health_id": random.choice(PLAN["health_ids"])})
        self.call("POST", f"{API}/citizens/lookup", headers=self.headers, body=body,
                  name="station: POST /citizens/lookup")

    @task(4)
    def batch(self) -> None:
        # A fresh client_item_id per upload: new doses, not a replay of an earlier session.
        body = random.choice(PLAN["batches"]).replace("{{n}}", secrets.token_hex(8))
        with self.client.post(f"{API}/immunizations/batch", data=body,
                              headers={**self.headers, "Content-Type": "application/json"},
                              name="station: POST /immunizations/batch",
                              catch_response=True) as answer:
            if answer.status_code == 0:
                answer.failure(f"no answer: {answer.error!r}")
            elif answer.status_code != 200:
                answer.failure(f"{answer.status_code} (expected 200)")
            elif answer.json()["counts"]["failed"]:
                answer.failure(f"items failed: {answer.json()['counts']}")

    @task(WORKLIST_WEIGHT)
    def worklist(self) -> None:
        self.call("GET", f"{API}/facilities/{PLAN['facility_id']}/immunization-worklist",
                  headers=self.headers, name="station: GET …/immunization-worklist")
