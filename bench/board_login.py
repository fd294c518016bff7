"""What the status board's login costs: one Argon2id check per login, and the
session check on every page, against the same board served on loopback without login in the
same run (Starlette's test client, in process: no network, no TLS).

    .venv/bin/python bench/board_login.py [--devices 1000] [--months 3] [--db PATH]
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import best, city_from_args  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from itaudit.board_config import BoardConfig, BoardUser, hash_password  # noqa: E402
from reports.board_sites import create_board  # noqa: E402

END = dt.date(2026, 10, 20)
PASSWORD = "correct horse battery staple"


def main() -> int:
    city, _, tmp = city_from_args(__doc__, devices=1000, months=3, end=END)
    hashed = hash_password(PASSWORD)
    today = lambda: END  # noqa: E731
    board = BoardConfig(host="127.0.0.2", exposed=True, tls_cert=Path("unused"), tls_key=Path("unused"),
                        users={"alice": BoardUser("alice", hashed, admin=True)})
    plain = TestClient(create_board([city], None, today=today), base_url="http://127.0.0.1:8765")
    login = TestClient(create_board([city], board, host="127.0.0.2", today=today), base_url="https://127.0.0.2:8765")

    def log_in() -> None:
        login.cookies.clear()
        token = re.search(r'name="csrf" value="([^"]+)"', login.get("/login").text).group(1)  # type: ignore[union-attr]
        r = login.post("/login", data={"csrf": token, "user": "alice", "password": PASSWORD}, follow_redirects=False)
        assert r.status_code == 303, r.status_code

    visitor = TestClient(login.app, base_url="https://127.0.0.2:8765")  # not logged in: the form itself

    def login_form() -> None:
        assert visitor.get("/login").status_code == 200

    t_login = best(log_in, 5)
    t_form = best(login_form, 5)
    print(f"\nthe login form {t_form * 1000:.1f} ms; logging in (form, POST, Argon2id check, redirect) "
          f"{t_login * 1000:.0f} ms: {t_login / t_form:.0f}x the form")
    print(f"\n{'page':<34}{'on loopback':>13}{'logged in':>12}{'ratio':>8}")
    for url, n in (("/static/board.css", 200), ("/devices?per_page=50", 50), ("/devices/1", 10)):
        def run(client: TestClient, url: str = url, n: int = n) -> None:
            for _ in range(n):
                assert client.get(url).status_code == 200
        a, b = best(lambda: run(plain)) / n, best(lambda: run(login)) / n
        print(f"{url:<34}{a * 1000:>10.2f} ms{b * 1000:>9.2f} ms{b / a:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
