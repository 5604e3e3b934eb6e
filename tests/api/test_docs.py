"""`/docs` works without internet: the page refers only to this service, which serves every
asset itself; and the documented examples are real requests the service accepts."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")


def _referenced_urls(html: str) -> list[str]:
    return [a or b for a, b in ASSET.findall(html)]


def test_swagger_ui_loads_only_local_assets(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.text
    assert "SwaggerUIBundle" in html
    assert "//" not in "".join(_referenced_urls(html)), _referenced_urls(html)
    assert "cdn" not in html.lower()
    urls = _referenced_urls(html)
    assert any(url.endswith("swagger-ui-bundle.js") for url in urls)
    assert any(url.endswith("swagger-ui.css") for url in urls)
    assert "/openapi.json" in urls
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url
    bundle = next(url for url in urls if url.endswith("swagger-ui-bundle.js"))
    # Swagger UI 5 is the first to render OpenAPI 3.1 documents, which FastAPI produces.
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert re.search(r'"5\.\d+\.\d+"', client.get(bundle).text)


def test_redoc_loads_only_local_assets(client: TestClient) -> None:
    html = client.get("/redoc").text
    urls = _referenced_urls(html)
    assert urls and all(not url.startswith(("http:", "https:", "//")) for url in urls), urls
    for url in urls:
        assert client.get(url).status_code == 200, url


def _examples(operation: dict, status: str | None = None) -> list:
    if status is None:
        content = operation["requestBody"]["content"]["application/json"]
    else:
        content = operation["responses"][status]["content"]["application/json"]
    found = list(content.get("examples", {}).values())
    found = [example["value"] for example in found]
    if "example" in content:
        found.append(content["example"])
    return found + list(content["schema"].get("examples", []))


def test_request_examples_are_accepted_and_response_examples_match(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/score", "/score/batch"):
        operation = paths[path]["post"]
        requests = _examples(operation)
        assert requests, f"no request example for {path}"
        for body in requests:
            response = client.post(path, json=body)
            assert response.status_code == 200, (path, body, response.text)
        answers = _examples(operation, "200")
        assert answers, f"no response example for {path}"
        for answer in answers:
            assert set(answer) <= set(response.json()) | {"reasons", "email", "contact_id"}
        for status in ("422", "503"):
            assert _examples(operation, status), f"no {status} example for {path}"
