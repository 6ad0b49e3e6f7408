"""Create users through an application's HTTP API.

interpreter: python        image: any image with python3 (10.213.0.1:5000/python:3 in the test cluster)
variables:   API_URL  (required) the API's base URL, e.g. http://api.shop.svc.cluster.local:8080
             USERS    (required) comma-separated user names
             DOMAIN   (default example.com) the users' e-mail domain
credentials: a Secret with key api-token (it becomes $API_TOKEN, sent as a Bearer token)

A failing request raises, so the run records the full traceback.
"""
import json
import os
import urllib.request


def create_user(api, token, name, domain):
    body = json.dumps({"name": name, "email": f"{name}@{domain}"}).encode()
    req = urllib.request.Request(api + "/users", data=body, method="POST", headers={
        "Content-Type": "application/json",
        "Authorization": "Bearer " + token,
    })
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def main():
    api = os.environ["API_URL"].rstrip("/")
    token = os.environ.get("API_TOKEN", "")
    domain = os.environ.get("DOMAIN", "example.com")
    names = [u.strip() for u in os.environ["USERS"].split(",") if u.strip()]
    for name in names:
        user = create_user(api, token, name, domain)
        print(f"created user {name} (id {user.get('id')})")
    print(f"{len(names)} users created")


main()
