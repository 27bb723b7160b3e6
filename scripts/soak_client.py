#!/usr/bin/env python3
"""The hostile half of `make soak`: for --seconds, threads send what an API key and a scanner can send beside the
redirect and create load (scripts/soak.sh): password PATCHes of the key's own links and of codes that do not
exist, wrong passwords to a protected link, random and forged-fresh codes, CSV exports and searches. Prints one
JSON line: answers by kind and status, and how many valid requests got a 5xx (the soak's pass mark is 0)."""

import argparse
import collections
import json
import os
import random
import string
import threading
import time
import urllib.error
import urllib.request

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
EPOCH_MS = 1_767_225_600_000  # idgen's default epoch (2026-01-01T00:00:00Z)


def base62(number):
    digits = ""
    while True:
        number, rest = divmod(number, 62)
        digits = ALPHABET[rest] + digits
        if number == 0:
            return digits


def decode62(code):
    number = 0
    for char in code:
        number = number * 62 + ALPHABET.index(char)
    return number


def call(method, url, body=None, headers=None, timeout=10):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
            return answer.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code
    except Exception:  # a timeout or a reset: counted as a failure of its own
        return 0


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


urllib.request.install_opener(urllib.request.build_opener(NoRedirect))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--codes", required=True, help="file of the key's own codes, one per line")
    args = parser.parse_args()
    shortener, redirect = os.environ["SHORTENER_URL"], os.environ["REDIRECT_URL"]
    auth = {"Authorization": f"Bearer {os.environ['SNOWLINK_API_KEY']}", "Content-Type": "application/json"}
    own = [line.strip() for line in open(args.codes) if line.strip()]
    worker = (decode62(own[0]) >> 12) & 1023
    locked = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"{shortener}/v1/urls", method="POST", headers=auth,
        data=json.dumps({"long_url": "https://example.com/soak-locked", "password": "right"}).encode(),
    ), timeout=10).read())["code"]
    counts = collections.Counter()
    lock = threading.Lock()
    stop_at = time.monotonic() + args.seconds

    def count(kind, status, valid):
        with lock:
            counts[f"{kind} {status}"] += 1
            if valid and (status >= 500 or status == 0) and status != 503:
                counts["valid 5xx"] += 1
            if valid and status == 503:
                counts["valid 503 (shed, with Retry-After)"] += 1

    def forged():
        stamp = int(time.time() * 1000) - EPOCH_MS
        return base62((stamp << 22) | (worker << 12) | random.randrange(4096))

    kinds = {
        "patch_password_own": lambda: count("patch_password_own", call(
            "PATCH", f"{shortener}/v1/urls/{random.choice(own)}", json.dumps({"password": "soak-secret"}).encode(), auth), True),
        "patch_password_missing": lambda: count("patch_password_missing", call(
            "PATCH", f"{shortener}/v1/urls/nope{random.randrange(10**9)}", json.dumps({"password": "x" * 11}).encode(), auth), False),
        "wrong_password": lambda: count("wrong_password", call(
            "POST", f"{redirect}/{locked}", b"password=wrong", {"Content-Type": "application/x-www-form-urlencoded"}), False),
        "random_code": lambda: count("random_code", call(
            "GET", f"{redirect}/{''.join(random.choices(ALPHABET, k=10))}"), False),
        "forged_code": lambda: count("forged_code", call("GET", f"{redirect}/{forged()}"), False),
        "export": lambda: count("export", call("GET", f"{shortener}/v1/urls/export.csv", headers=auth, timeout=60), True),
        "search": lambda: count("search", call("GET", f"{shortener}/v1/urls?q=example", headers=auth), True),
    }
    weights = {"patch_password_own": 3, "patch_password_missing": 3, "wrong_password": 2, "random_code": 6,
               "forged_code": 6, "export": 1, "search": 2}

    def loop():
        names, chances = list(weights), list(weights.values())
        while time.monotonic() < stop_at:
            kinds[random.choices(names, chances)[0]]()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(dict(sorted(counts.items()))))


if __name__ == "__main__":
    main()
