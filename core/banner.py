"""Print where to log in after `make run` has seeded the demo world."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    identities_file, base_url = Path(argv[1]), argv[2]
    identities = json.loads(identities_file.read_text(encoding="utf-8"))
    print(f"\nCitizen portal: {base_url}/  (log in as a citizen below)")
    print(f"Service: {base_url}  (health: {base_url}/healthz, API: {base_url}/api/v1)")
    print(f"Demo identities (development only): {identities_file}")
    for person in identities.get("citizens", []) + identities.get("practitioners", []):
        login = person.get("username")
        if login:
            print(f"  {person['demo_role']:<14} login {login} / {person.get('password')}")
        else:
            print(f"  {person['demo_role']:<14} {person['full_name']} (no login)")
    login_page = f"{base_url}/oauth/authorize"
    print(f"API clients log in at {login_page} (clients in the identities file); "
          "a development token: `.venv/bin/flask --app app auth demo-token ROLE`.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
