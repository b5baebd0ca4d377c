"""The acceptance corpus of ``keyscope scan``.

The test builds a small repository of realistic files around tokens signed by the real
Azure SDKs with fresh random keys: the 2023 incident's README link, Python, a Jupyter
notebook, YAML, ``.env``, XML, ``appsettings.json``, Terraform, shell (azcopy, curl,
``az``), a minified bundle, HTML, a Kubernetes Secret, split and nested forms; and
look-alikes that must not be reported (placeholders, the public emulator key,
sanitized recordings, bad signatures, scanner regexes, SHA-512 digests).

Every positive must be found at its line with its rule and nothing else may be
reported; both engines and a parallel scan must agree exactly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.data.tables import TableSasPermissions, generate_table_sas
from azure.storage.blob import (
    BlobSasPermissions,
    ContainerSasPermissions,
    generate_account_sas,
    generate_blob_sas,
    generate_container_sas,
)
from azure.storage.filedatalake import FileSystemSasPermissions, generate_file_system_sas
from azure.storage.fileshare import ShareSasPermissions, generate_share_sas
from azure.storage.queue import QueueSasPermissions, generate_queue_sas
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from keyscope.analyze.azure.filters import placeholder_secret
from keyscope.model import Finding, Location, ScanResult
from keyscope.scan import ScanOptions, scan
from tests.sdk import NOW, incident_url, new_key
from tests.test_aws import ACCOUNT, key_id, presign, secret
from tests.test_gcp import PROJECT, mint_key_info, signed_url
from tests.test_jwt import claims, sign
from tests.test_platform_tokens import NEGATIVES as TOKEN_NEGATIVES
from tests.tokens import HEX, github, gitlab_routable, rand, slack_webhook
from tests.tokens import tokens as mint_tokens

SAS = "azure-storage-sas"
CONN = "azure-storage-connection-string"
KEY = "azure-storage-account-key"
AWS_KEY = "aws-access-key"
AWS_URL = "aws-s3-presigned-url"
GCP_KEY = "gcp-service-account-key"
GCP_URL = "gcp-storage-signed-url"
HF_TOKEN = "huggingface-token"
OPENAI = "openai-api-key"
GITHUB = "github-token"
GITLAB = "gitlab-token"
SLACK_HOOK = "slack-webhook"
WANDB = "wandb-api-key"
PRIVATE_KEY = "private-key"
JWT = "jwt"

START = NOW - timedelta(days=1)
EXPIRY = NOW + timedelta(days=90)
# The public Azurite / storage emulator account key (documented by Microsoft).
DEV_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
FILLER_FILES = 300  # more than one batch (256 files), so jobs=2 splits the tree


# --- building the corpus --------------------------------------------------------------------


@dataclass
class Corpus:
    root: Path
    # (path relative to root, line, rule id) for every location that must be reported
    expected: set[tuple[str, int, str]] = field(default_factory=set)
    secrets: list[str] = field(default_factory=list)  # every signature and key minted
    incident_sig: str = ""

    def write(self, rel: str, lines: list[str], positives: dict[int, tuple[str, str]]) -> None:
        """Write ``lines``; ``positives`` maps a 1-based line to (rule id, a fragment of
        the secret that must be on that line: a self-check of the corpus itself)."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        for line, (rule_id, fragment) in positives.items():
            assert fragment in lines[line - 1], (rel, line, fragment)
            self.expected.add((rel, line, rule_id))

    def key(self) -> str:
        k = new_key()
        self.secrets.append(k)
        return k

    def sas_where(self, make: Callable[[str], str], ok: Callable[[str], bool]) -> str:
        """Mint with fresh keys until the signature, as written in the query, passes
        ``ok``; record the key and the signature."""
        for _ in range(1000):
            key = new_key()
            query = make(key)
            if ok(query.split("sig=")[1]):
                self.secrets.append(key)
                return self.sas(query)
        raise AssertionError("no signature of the wanted shape")

    def sas(self, query: str) -> str:
        """Record the signature of an SDK-made query string and return the query."""
        self.secrets.append(parse_qs(query)["sig"][0])
        return query


def _sig_fragment(query: str) -> str:
    """The first characters of the signature as written in the query (URL-encoded)."""
    return query.split("sig=")[1][:12]


def build_corpus(root: Path) -> Corpus:
    c = Corpus(root)

    # 1. The incident: an account SAS in a README download link, and again in a script.
    research_key = c.key()
    incident = incident_url("contosoresearch", research_key)
    c.sas(incident.split("?", 1)[1])
    c.incident_sig = parse_qs(incident.split("?", 1)[1])["sig"][0]
    c.write(
        "README.md",
        [
            "# Robust vision models",
            "",
            "Checkpoints for the paper. Load them with `torch.load`.",
            "",
            f"Download the weights: [checkpoint.ckpt]({incident})",
            "",
            "Licensed under MIT.",
        ],
        {5: (SAS, _sig_fragment(incident))},
    )

    # 2. Python: a service SAS for one blob.
    py_key = c.key()
    blob_q = c.sas(
        generate_blob_sas(
            "contosopy", "data", "train/part-0001.csv", account_key=py_key,
            permission=BlobSasPermissions(read=True), expiry=EXPIRY, start=START,
        )
    )
    c.write(
        "src/loader.py",
        [
            '"""Load the training data."""',
            "",
            "import pandas as pd",
            "",
            "TRAIN_URL = (",
            f'    "https://contosopy.blob.core.windows.net/data/train/part-0001.csv?{blob_q}"',
            ")",
            "",
            "",
            "def load() -> pd.DataFrame:",
            "    return pd.read_csv(TRAIN_URL)",
        ],
        {6: (SAS, _sig_fragment(blob_q))},
    )

    # 3. Jupyter notebook: a blob URL in a code cell's source (a JSON string, so its
    # quotes are \" and each line ends in \n), and a container URL printed in a cell
    # output, JSON-escaped (\u0026, \/).
    src_key = c.key()
    src_q = c.sas(
        generate_blob_sas(
            "contosonbsrc", "datasets", "eval/images.parquet", account_key=src_key,
            permission=BlobSasPermissions(read=True), expiry=EXPIRY, start=START,
        )
    )
    src_url = f"https://contosonbsrc.blob.core.windows.net/datasets/eval/images.parquet?{src_q}"
    # JSON escapes the "/" of a signature as "\/": one signature with its first "/" past
    # the eighth character (and eight letters or digits after one), one with a "/" among
    # the first eight
    nb_q = c.sas_where(
        lambda key: generate_container_sas(
            "contosonb", "experiments", account_key=key,
            permission=ContainerSasPermissions(read=True, list=True), expiry=EXPIRY,
        ),
        lambda sig: "/" not in sig[:8]
        and re.search(r"/[A-Za-z0-9]{8}", sig) is not None,
    )
    bak_q = c.sas_where(
        lambda key: generate_container_sas(
            "contosonbbak", "backups", account_key=key,
            permission=ContainerSasPermissions(read=True, list=True), expiry=EXPIRY,
        ),
        lambda sig: "/" in sig[1:7],
    )
    nb_url = f"https://contosonb.blob.core.windows.net/experiments?{nb_q}"
    bak_url = f"https://contosonbbak.blob.core.windows.net/backups?{bak_q}"
    nb_escaped = nb_url.replace("/", "\\/").replace("&", "\\u0026")
    bak_escaped = bak_url.replace("/", "\\/").replace("&", "\\u0026")
    assert "\\u0026" in nb_escaped and "\\/" in nb_escaped and "&" not in nb_escaped
    c.write(
        "notebooks/explore.ipynb",
        [
            "{",
            ' "cells": [',
            "  {",
            '   "cell_type": "code",',
            '   "execution_count": 2,',
            '   "metadata": {},',
            '   "outputs": [],',
            '   "source": [',
            '    "import pandas as pd\\n",',
            f'    "df = pd.read_parquet(\\"{src_url}\\")\\n",',
            '    "df.head()"',
            "   ]",
            "  },",
            "  {",
            '   "cell_type": "code",',
            '   "execution_count": 3,',
            '   "metadata": {},',
            '   "outputs": [',
            "    {",
            '     "name": "stdout",',
            '     "output_type": "stream",',
            '     "text": [',
            f'      "container url: {nb_escaped}\\n",',
            f'      "backup url: {bak_escaped}\\n"',
            "     ]",
            "    }",
            "   ],",
            '   "source": ["print(\\"container url:\\", client.url)"]',
            "  }",
            " ],",
            ' "metadata": {"kernelspec": {"name": "python3"}},',
            ' "nbformat": 4,',
            ' "nbformat_minor": 5',
            "}",
        ],
        {},
    )
    # a notebook's findings are at lines of its cells (JSON escapes decoded), not of the JSON
    c.expected |= {
        ("notebooks/explore.ipynb!/cell 1", 2, SAS),
        ("notebooks/explore.ipynb!/cell 2 output 1", 1, SAS),
        ("notebooks/explore.ipynb!/cell 2 output 1", 2, SAS),
    }
    notebook = json.loads((root / "notebooks/explore.ipynb").read_text())  # a valid notebook
    assert src_url in notebook["cells"][0]["source"][1]
    assert notebook["cells"][1]["outputs"][0]["text"] == [
        f"container url: {nb_url}\n",
        f"backup url: {bak_url}\n",
    ]

    # 4. YAML: a bare queue SAS query, and a connection string as a folded scalar.
    q_key = c.key()
    queue_q = c.sas(
        generate_queue_sas(
            "contosoqueue", "jobs", q_key,
            permission=QueueSasPermissions(read=True, process=True), expiry=EXPIRY, start=START,
        )
    )
    yaml_key = c.key()
    c.write(
        "deploy/pipeline.yaml",
        [
            "stages:",
            "  - name: ingest",
            "    queue:",
            "      endpoint: https://contosoqueue.queue.core.windows.net/jobs",
            f'      sas_token: "{queue_q}"',
            "  - name: archive",
            "    storage:",
            "      connection_string: >-",
            "        DefaultEndpointsProtocol=https;AccountName=contosoyaml;",
            f"        AccountKey={yaml_key};",
            "        EndpointSuffix=core.windows.net",
            "      container: archive",
        ],
        {5: (SAS, _sig_fragment(queue_q)), 9: (CONN, "AccountName=contosoyaml")},
    )

    # 5. .env: a connection string with a key, and a bare table SAS.
    env_key = c.key()
    table_key = c.key()
    table_q = c.sas(
        generate_table_sas(
            AzureNamedKeyCredential("contosotable", table_key), "Orders",
            permission=TableSasPermissions(read=True, add=True), expiry=EXPIRY, start=START,
        )
    )
    c.write(
        ".env",
        [
            "# local settings - do not commit",
            "DEBUG=1",
            "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;"
            f"AccountName=contosoenv;AccountKey={env_key};EndpointSuffix=core.windows.net",
            "ORDERS_TABLE_URL=https://contosotable.table.core.windows.net/Orders",
            f"ORDERS_TABLE_SAS=?{table_q}",
        ],
        {3: (CONN, env_key[:12]), 5: (SAS, _sig_fragment(table_q))},
    )

    # 6. XML config: a file share SAS and a SAS connection string, both with &amp;.
    share_key = c.key()
    share_q = c.sas(
        generate_share_sas(
            "contosoxml", "reports", share_key,
            permission=ShareSasPermissions(read=True, list=True), expiry=EXPIRY, start=START,
        )
    )
    xml_acct_key = c.key()
    xml_acct_q = c.sas(
        generate_account_sas(
            "contosoxmlq", xml_acct_key, resource_types="co", permission="rl",
            expiry=EXPIRY, start=START, services="bq",
        )
    )
    share_url = f"https://contosoxml.file.core.windows.net/reports?{share_q}"
    xml_cs = (
        "BlobEndpoint=https://contosoxmlq.blob.core.windows.net/;"
        "QueueEndpoint=https://contosoxmlq.queue.core.windows.net/;"
        f"SharedAccessSignature={xml_acct_q}"
    )
    c.write(
        "web.config",
        [
            '<?xml version="1.0" encoding="utf-8"?>',
            "<configuration>",
            "  <appSettings>",
            '    <add key="Environment" value="Production" />',
            f'    <add key="ReportsShare" value="{share_url.replace("&", "&amp;")}" />',
            "  </appSettings>",
            "  <connectionStrings>",
            f'    <add name="Storage" connectionString="{xml_cs.replace("&", "&amp;")}" />',
            "  </connectionStrings>",
            "</configuration>",
        ],
        {5: (SAS, _sig_fragment(share_q)), 8: (CONN, "SharedAccessSignature=")},
    )

    # 7. C# appsettings.json: an account-key connection string and a SAS connection string.
    cs_key = c.key()
    cs_sas_key = c.key()
    cs_sas_q = c.sas(
        generate_account_sas(
            "contosoappsas", cs_sas_key, resource_types="o", permission="r",
            expiry=EXPIRY, start=START, services="b",
        )
    )
    c.write(
        "src/Api/appsettings.json",
        [
            "{",
            '  "Logging": { "LogLevel": { "Default": "Information" } },',
            '  "ConnectionStrings": {',
            '    "Blobs": "DefaultEndpointsProtocol=https;AccountName=contosoapp;'
            f'AccountKey={cs_key};EndpointSuffix=core.windows.net",',
            '    "ReadOnly": "BlobEndpoint=https://contosoappsas.blob.core.windows.net;'
            f'SharedAccessSignature={cs_sas_q}"',
            "  },",
            '  "AllowedHosts": "*"',
            "}",
        ],
        {4: (CONN, cs_key[:12]), 5: (CONN, "SharedAccessSignature=")},
    )
    json.loads((root / "src/Api/appsettings.json").read_text())

    # 8. Terraform: the azurerm backend with an access key.
    tf_key = c.key()
    c.write(
        "infra/main.tf",
        [
            "terraform {",
            '  required_version = ">= 1.5"',
            '  backend "azurerm" {',
            '    resource_group_name  = "rg-tfstate"',
            '    storage_account_name = "contosotfstate"',
            '    container_name       = "tfstate"',
            '    key                  = "prod.terraform.tfstate"',
            f'    access_key           = "{tf_key}"',
            "  }",
            "}",
        ],
        {8: (KEY, tf_key)},
    )

    # 9. Shell: azcopy with a SAS URL, curl with the incident URL, az with a key.
    copy_key = c.key()
    copy_q = c.sas(
        generate_container_sas(
            "contosocopy", "models", account_key=copy_key,
            permission=ContainerSasPermissions(read=True, write=True, create=True, list=True),
            expiry=EXPIRY, start=START,
        )
    )
    cli_key = c.key()
    c.write(
        "scripts/publish.sh",
        [
            "#!/usr/bin/env bash",
            "set -euo pipefail",
            "",
            "azcopy copy './checkpoints/*' "
            f"'https://contosocopy.blob.core.windows.net/models?{copy_q}' --recursive",
            "",
            f'curl -fsSL -o checkpoint.ckpt "{incident}"',
            "",
            "az storage blob upload --account-name contosocli \\",
            f'  --account-key "{cli_key}" \\',
            "  --container-name releases --file dist/model.tar.gz --name model.tar.gz",
        ],
        {4: (SAS, _sig_fragment(copy_q)), 6: (SAS, _sig_fragment(incident)), 9: (KEY, cli_key)},
    )

    # 10. A minified bundle: one long line with a Data Lake file system SAS in it.
    dl_key = c.key()
    dl_q = c.sas(
        generate_file_system_sas(
            "contosojs", "assets", dl_key,
            permission=FileSystemSasPermissions(read=True, list=True), expiry=EXPIRY, start=START,
        )
    )
    chunk = '!function(e,t){"use strict";var n=e.length,r=t(n);return r&&r.map(function(o){return o+1})}([1,2,3],function(x){return x});'  # noqa: E501
    bundle = chunk * 800 + f'var ASSETS="https://contosojs.dfs.core.windows.net/assets?{dl_q}";' + (
        chunk * 800
    )
    c.write("public/js/app.min.js", [bundle], {1: (SAS, _sig_fragment(dl_q))})

    # 11. HTML: a download link with &amp; in href.
    html_key = c.key()
    html_q = c.sas(
        generate_blob_sas(
            "contosohtml", "public", "reports/q3.pdf", account_key=html_key,
            permission=BlobSasPermissions(read=True), expiry=EXPIRY, start=START,
        )
    )
    html_url = f"https://contosohtml.blob.core.windows.net/public/reports/q3.pdf?{html_q}"
    c.write(
        "public/index.html",
        [
            "<!doctype html>",
            "<html lang=en>",
            "<head><title>Reports</title></head>",
            "<body>",
            "  <h1>Quarterly report</h1>",
            f'  <p><a href="{html_url.replace("&", "&amp;")}">Download Q3</a></p>',
            "</body>",
            "</html>",
        ],
        {6: (SAS, _sig_fragment(html_q))},
    )

    # 12. A Kubernetes Secret: the connection string Base64-encoded in data:.
    k8s_key = c.key()
    k8s_cs = (
        f"DefaultEndpointsProtocol=https;AccountName=contosok8s;AccountKey={k8s_key};"
        "EndpointSuffix=core.windows.net"
    )
    k8s_b64 = base64.b64encode(k8s_cs.encode()).decode()
    c.write(
        "k8s/storage-secret.yaml",
        [
            "apiVersion: v1",
            "kind: Secret",
            "metadata:",
            "  name: storage",
            "type: Opaque",
            "data:",
            "  username: YWRtaW4=",
            f"  connection-string: {k8s_b64}",
        ],
        {8: (CONN, k8s_b64[:20])},
    )

    # 13. C#: a connection string concatenated over several lines.
    csharp_key = c.key()
    c.write(
        "src/Api/Storage.cs",
        [
            "namespace Contoso.Api;",
            "",
            "public static class Storage",
            "{",
            "    public const string ConnectionString =",
            '        "DefaultEndpointsProtocol=https;" +',
            '        "AccountName=contosocsharp;" +',
            f'        "AccountKey={csharp_key};" +',
            '        "EndpointSuffix=core.windows.net";',
            "}",
        ],
        {6: (CONN, "DefaultEndpointsProtocol=https;")},
    )

    # 14. A SAS URL percent-encoded inside another URL's query (a redirect link).
    redir_key = c.key()
    redir_q = c.sas(
        generate_blob_sas(
            "contosoredir", "downloads", "setup.exe", account_key=redir_key,
            permission=BlobSasPermissions(read=True), expiry=EXPIRY, start=START,
        )
    )
    inner = f"https://contosoredir.blob.core.windows.net/downloads/setup.exe?{redir_q}"
    redirect = "https://example.com/redirect?to=" + quote(inner, safe="") + "&utm_source=mail"
    assert "%3F" in redirect and "%26sig%3D" in redirect and "%26sv%3D" in redirect
    c.write(
        "docs/install.md",
        [
            "# Install",
            "",
            "1. Download the installer from",
            f"   <{redirect}>",
            "2. Run it.",
        ],
        {4: (SAS, "example.com/redirect")},
    )

    # 15. A bare SAS query URL-encoded twice (a value re-quoted by two layers of tooling).
    twice_key = c.key()
    twice_q = c.sas(
        generate_account_sas(
            "contosotwice", twice_key, resource_types="sco", permission="rl",
            expiry=EXPIRY, start=START, services="b",
        )
    )
    twice = quote(quote(twice_q, safe=""), safe="")
    assert "%2526sig%253D" in twice
    c.write(
        "config/export.ini",
        [
            "[export]",
            "account = contosotwice",
            "container = exports",
            f"sas = {twice}",
        ],
        {4: (SAS, twice[:20])},
    )

    # 16. AWS: a shared credentials file, and a presigned URL botocore signed (SigV2,
    # its default in eu-west-1) in a download script.
    aws_id, aws_secret = key_id(), secret()
    c.secrets.append(aws_secret)
    c.write(
        "deploy/aws/credentials",
        ["[default]", f"aws_access_key_id = {aws_id}", f"aws_secret_access_key = {aws_secret}",
         "region = eu-west-1"],
        {2: (AWS_KEY, aws_id)},
    )
    url, _ = presign("eu-west-1", bucket="contoso-models", key="w.bin")
    c.secrets.append(parse_qs(url.split("?", 1)[1])["Signature"][0])
    c.write("scripts/fetch.sh", ["#!/bin/sh", f"curl -o w.bin '{url}'"], {2: (AWS_URL, url[:40])})

    # 17. Google Cloud: a service-account key file (its private_key_id on line 4) and a
    # V4 signed URL google-cloud-storage made from it.
    info = mint_key_info()
    c.secrets.extend(info["private_key"].splitlines()[1:-1])
    c.write("deploy/gcp/trainer.json", json.dumps(info, indent=2).splitlines(),
            {4: (GCP_KEY, info["private_key_id"])})
    gcs = signed_url(bucket="contoso-models", name="w.bin")
    c.secrets.append(parse_qs(gcs.split("?", 1)[1])["X-Goog-Signature"][0])
    c.write("scripts/gcs.sh", ["#!/bin/sh", f"curl -o w.bin '{gcs}'"], {2: (GCP_URL, gcs[:40])})

    # 18. ML platform and code-host tokens in an env file, an SSH key, a session's JWT.
    minted = mint_tokens()
    hf, openai, gh, gl = (minted["hf-user-token"], minted["openai-project-key"], github(),
                          gitlab_routable())
    hook, wandb = slack_webhook(), rand(HEX, 40)
    c.secrets.extend([hf, openai, gh, gl, hook.rsplit("/", 1)[1], wandb])
    c.write(
        "config/ml-tokens.env",
        ["# tokens the training jobs use", f"HF_TOKEN={hf}", f"OPENAI_API_KEY={openai}",
         f"GITHUB_TOKEN={gh}", f"GITLAB_TOKEN={gl}", f"SLACK_WEBHOOK_URL={hook}",
         f"WANDB_API_KEY={wandb}"],
        {2: (HF_TOKEN, hf), 3: (OPENAI, openai), 4: (GITHUB, gh), 5: (GITLAB, gl),
         6: (SLACK_HOOK, hook), 7: (WANDB, wandb)},
    )
    ssh_key = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()).decode()
    c.secrets.extend(ssh_key.splitlines()[2:-1])  # the first line is the format's header
    c.write("deploy/keys/id_ed25519", ssh_key.splitlines(),
            {1: (PRIVATE_KEY, "-----BEGIN OPENSSH PRIVATE KEY-----")})
    session = sign(claims())
    c.secrets.append(session)
    c.write("web/session.json", [json.dumps({"id_token": session})], {1: (JWT, session)})

    _negatives(root)
    for i in range(FILLER_FILES):
        (root / "assets" / "icons").mkdir(parents=True, exist_ok=True)
        (root / "assets" / "icons" / f"icon-{i:03}.svg").write_text(
            f'<svg xmlns="http://www.w3.org/2000/svg"><title>icon {i}</title></svg>\n'
        )
    return c


def _negatives(root: Path) -> None:
    """Files that look like credentials and must not be reported."""

    def put(rel: str, text: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    put(
        "docs/storage-howto.md",
        "# Using a SAS\n\n"
        "Append the token to the blob URL:\n\n"
        "    https://myaccount.blob.core.windows.net/c/b.txt?sv=2022-11-02&sr=b&sp=r"
        "&se=2031-01-01&sig=<signature>\n\n"
        "Or set a connection string:\n\n"
        "    DefaultEndpointsProtocol=https;AccountName=myaccount;AccountKey=<your-key>;"
        "EndpointSuffix=core.windows.net\n"
        "    AZURE_STORAGE_SAS_TOKEN=sv=2022-11-02&ss=b&srt=co&sp=rl&se=2031-01-01"
        "&sig=${SAS_SIGNATURE}\n",
    )
    # The emulator: the public Azurite key, UseDevelopmentStorage, and a SAS the SDK
    # signed with the public key for the path-style emulator endpoint.
    dev_q = generate_blob_sas(
        "devstoreaccount1", "c", "b.txt", account_key=DEV_KEY,
        permission=BlobSasPermissions(read=True, write=True), expiry=EXPIRY,
    )
    put(
        "src/Api/local.settings.json",
        json.dumps(
            {
                "IsEncrypted": False,
                "Values": {
                    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                    "Azurite": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                    f"AccountKey={DEV_KEY};"
                    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
                    "AzuriteBlob": f"http://127.0.0.1:10000/devstoreaccount1/c/b.txt?{dev_q}",
                },
            },
            indent=2,
        )
        + "\n",
    )
    # Test-proxy recordings: signatures replaced by the sanitizer.
    put(
        "tests/recordings/test_upload.json",
        json.dumps(
            {
                "Entries": [
                    {
                        "RequestUri": "https://fakestorage.blob.core.windows.net/c/b.txt?"
                        "sv=2021-08-06&se=2031-01-01T00%3A00%3A00Z&sr=b&sp=r&sig=Sanitized",
                        "RequestMethod": "GET",
                    },
                    {
                        "RequestUri": "https://fakestorage.blob.core.windows.net/c?"
                        "sv=2021-08-06&se=2031-01-01T00%3A00%3A00Z&sr=c&sp=rl&sig=REDACTED",
                        "RequestMethod": "GET",
                    },
                ]
            },
            indent=2,
        )
        + "\n",
    )
    # A real SDK token whose signature was cut: 24 bytes, not an HMAC-SHA256.
    bad_q = generate_blob_sas(
        "contosobad", "c", "b.txt", account_key=new_key(),
        permission=BlobSasPermissions(read=True), expiry=EXPIRY,
    )
    head, sig = bad_q.split("sig=")
    short = quote(base64.b64encode(base64.b64decode(parse_qs("s=" + sig)["s"][0])[:24]).decode())
    put(
        "tests/fixtures/truncated.txt",
        f"https://contosobad.blob.core.windows.net/c/b.txt?{head}sig={short}\n",
    )
    # A scanner's own patterns.
    put(
        "tools/secretscan/patterns.py",
        "import re\n\n"
        'SAS_RE = re.compile(r"sig=[A-Za-z0-9%+/]{20,}={0,2}")\n'
        'SAS_URL_RE = re.compile(r"https://[a-z0-9]{3,24}\\.blob\\.core\\.windows\\.net/'
        '[^?]*\\?[^ ]*sig=[^& ]+")\n'
        'CONN_RE = re.compile(r"AccountKey=[A-Za-z0-9+/=]{88}")\n',
    )
    # SHA-512 digests: the shape of an account key, but no account anywhere near.
    digests = [
        base64.b64encode(hashlib.sha512(name.encode()).digest()).decode()
        for name in ("left-pad", "lodash", "react")
    ]
    assert all(len(d) == 88 and d.endswith("==") for d in digests)
    put(
        "web/package-lock.json",
        json.dumps(
            {
                "name": "web",
                "lockfileVersion": 3,
                "packages": {
                    f"node_modules/{name}": {
                        "version": "1.0.0",
                        "resolved": f"https://registry.npmjs.org/{name}/-/{name}-1.0.0.tgz",
                        "integrity": f"sha512-{d}",
                    }
                    for name, d in zip(("left-pad", "lodash", "react"), digests, strict=True)
                },
            },
            indent=2,
        )
        + "\n",
    )
    put("checksums.txt", "".join(f"sha512 = {d}\n" for d in digests))
    # Token placeholders and documentation samples.
    put("docs/tokens.md", TOKEN_NEGATIVES)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    # A random key or signature that happens to contain a word such as "fake" or "your"
    # is dropped as a placeholder by design; draw again so the test never flakes on it.
    for _ in range(20):
        c = build_corpus(tmp_path_factory.mktemp("corpus"))
        if not any(placeholder_secret(s) for s in c.secrets):
            return c
    raise AssertionError("could not mint a corpus without placeholder-looking secrets")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hs-cache")


def _scan(corpus: Corpus, cache_dir: Path, **kwargs: object) -> ScanResult:
    options = ScanOptions(**{"jobs": 1, "now": NOW, "cache_dir": cache_dir, **kwargs})  # type: ignore[arg-type]
    return scan([corpus.root], options)


def _located(corpus: Corpus, findings: list[Finding]) -> list[tuple[str, int, str]]:
    root = str(corpus.root) + "/"
    return sorted(
        (_member(loc, root), loc.line, f.rule_id) for f in findings for loc in f.locations
    )


def _member(loc: Location, root: str) -> str:
    """The relative path, with the members it was found in (a notebook's cell)."""
    inside = [step for step in loc.origin if step != "base64"]
    return "!/".join((loc.path.removeprefix(root), *inside))


def _canonical(corpus: Corpus, result: ScanResult) -> list[object]:
    root = str(corpus.root) + "/"
    return sorted(
        (
            f.fingerprint,
            f.rule_id,
            f.explanation.severity,
            tuple(
                (
                    loc.path.removeprefix(root), loc.line, loc.column, loc.end_line,
                    loc.end_column, loc.origin, loc.snippet,
                )
                for loc in f.locations
            ),
        )
        for f in result.findings
    )


@pytest.fixture(scope="module")
def result(corpus: Corpus, cache_dir: Path) -> ScanResult:
    return _scan(corpus, cache_dir)


# --- the acceptance tests -------------------------------------------------------------------


def test_every_positive_at_its_line_and_no_false_positive(
    corpus: Corpus, result: ScanResult
) -> None:
    found = _located(corpus, result.findings)
    missing = sorted(corpus.expected - set(found))
    extra = sorted(set(found) - corpus.expected)
    assert (missing, extra) == ([], []), f"missing: {missing}\nextra: {extra}"
    assert len(found) == len(set(found)), "a location reported twice"
    assert len(corpus.expected) == 35


def test_one_secret_in_two_files_is_one_finding_with_two_locations(
    corpus: Corpus, result: ScanResult
) -> None:
    incident = [
        f for f in result.findings if f.explanation.access.account == "contosoresearch"
    ]
    assert len(incident) == 1
    f = incident[0]
    assert f.rule_id == SAS
    assert [(loc.path.removeprefix(str(corpus.root) + "/"), loc.line) for loc in f.locations] == [
        ("README.md", 5),
        ("scripts/publish.sh", 6),
    ]
    assert f.explanation.access.kind == "account-sas"
    assert f.severity.label == "critical"
    # every other secret was written once: one location each
    assert all(len(x.locations) == 1 for x in result.findings if x is not f)
    assert len({x.fingerprint for x in result.findings}) == len(result.findings)


# (path, line of the first location) -> (kind, account) of the credential found there.
# A bare query carries no account name; a SAS inside a connection string takes the
# account from the endpoints beside it.
CREDENTIALS = {
    (".env", 3): ("account-key", "contosoenv"),
    (".env", 5): ("service-sas", "contosotable"),  # bare query: account from the line above
    ("README.md", 5): ("account-sas", "contosoresearch"),
    ("config/export.ini", 4): ("account-sas", None),
    ("deploy/pipeline.yaml", 5): ("service-sas", "contosoqueue"),  # from the endpoint line
    ("deploy/pipeline.yaml", 9): ("account-key", "contosoyaml"),
    ("deploy/aws/credentials", 2): ("access-key", ACCOUNT),
    ("scripts/fetch.sh", 2): ("presigned-url", ACCOUNT),
    ("deploy/gcp/trainer.json", 4): ("service-account-key", PROJECT),
    ("scripts/gcs.sh", 2): ("signed-url", PROJECT),
    ("config/ml-tokens.env", 2): ("hf-user-token", None),
    ("config/ml-tokens.env", 3): ("openai-project-key", None),
    ("config/ml-tokens.env", 4): ("github-classic-token", None),
    ("config/ml-tokens.env", 5): ("gitlab-access-token", "5907"),  # the routable payload
    ("config/ml-tokens.env", 7): ("wandb-api-key", None),
    ("deploy/keys/id_ed25519", 1): ("private-key", None),
    ("web/session.json", 1): ("jwt", "ml-pipeline"),
    ("docs/install.md", 4): ("service-sas", "contosoredir"),
    ("infra/main.tf", 8): ("account-key", "contosotfstate"),
    ("k8s/storage-secret.yaml", 8): ("account-key", "contosok8s"),
    ("notebooks/explore.ipynb!/cell 1", 2): ("service-sas", "contosonbsrc"),
    ("notebooks/explore.ipynb!/cell 2 output 1", 1): ("service-sas", "contosonb"),
    ("notebooks/explore.ipynb!/cell 2 output 1", 2): ("service-sas", "contosonbbak"),
    ("public/index.html", 6): ("service-sas", "contosohtml"),
    ("public/js/app.min.js", 1): ("service-sas", "contosojs"),
    ("scripts/publish.sh", 4): ("service-sas", "contosocopy"),
    ("scripts/publish.sh", 9): ("account-key", "contosocli"),
    ("src/Api/Storage.cs", 6): ("account-key", "contosocsharp"),
    ("src/Api/appsettings.json", 4): ("account-key", "contosoapp"),
    ("src/Api/appsettings.json", 5): ("account-sas", "contosoappsas"),
    ("src/loader.py", 6): ("service-sas", "contosopy"),
    ("web.config", 5): ("service-sas", "contosoxml"),
    ("web.config", 8): ("account-sas", "contosoxmlq"),
}


def test_each_finding_is_the_right_credential(corpus: Corpus, result: ScanResult) -> None:
    """Rule ids and lines can line up by chance; the decoded kind and account cannot.
    (Missing and extra findings are the first test's business.)"""
    assert set(CREDENTIALS) | {("scripts/publish.sh", 6), ("config/ml-tokens.env", 6)} == {
        (path, line) for path, line, _ in corpus.expected
    }
    root = str(corpus.root) + "/"
    for f in result.findings:
        where = (_member(f.locations[0], root), f.locations[0].line)
        a = f.explanation.access
        if where == ("config/ml-tokens.env", 6):  # the Slack team id is in the URL
            assert (a.kind, a.account) == ("slack-webhook", a.details["team_id"]), where
            continue
        assert (a.kind, a.account) == CREDENTIALS.get(where), where


def test_locations_point_at_the_secret(corpus: Corpus, result: ScanResult) -> None:
    root = str(corpus.root) + "/"
    by_path = {loc.path.removeprefix(root): loc for f in result.findings for loc in f.locations}
    # the bundle: one line, the column is the byte offset of the URL + 1
    loc = by_path["public/js/app.min.js"]
    bundle = (corpus.root / "public/js/app.min.js").read_bytes()
    assert loc.column == bundle.index(b"https://contosojs.") + 1
    assert loc.origin == ()
    # the Kubernetes Secret: the location is the Base64 value, the origin says so
    loc = by_path["k8s/storage-secret.yaml"]
    assert loc.origin == ("base64",)
    assert loc.column == len("  connection-string: ") + 1
    # snippets never carry a secret, in whatever encoding it was written: no run of six
    # letters and digits from a secret (past the four characters shown) is in a snippet
    leaks = [
        (loc.path.removeprefix(root), loc.line, run)
        for secret in corpus.secrets
        for run in re.findall(r"[A-Za-z0-9]{6,}", secret[4:])
        for f in result.findings
        for loc in f.locations
        if run in loc.snippet
    ]
    assert leaks == []


def test_negatives_are_set_aside_with_reasons(result: ScanResult) -> None:
    assert result.skipped == []
    rejected = result.stats.rejected
    # UseDevelopmentStorage=true, the Azurite connection string, the SAS signed with
    # the public key
    assert rejected["public emulator credential"] == 3
    # the three SHA-512 digests in package-lock.json and three in checksums.txt have no
    # key label: the account key rule's anchor needs one, so no Python ever sees them
    assert rejected["88-character Base64 value not labelled as a key"] == 0
    assert not any("digest" in reason for reason in rejected)
    assert rejected["sig: decodes to 24 bytes; an HMAC-SHA256 signature has 32"] == 1


def test_stats_count_every_file(corpus: Corpus, result: ScanResult) -> None:
    files = [p for p in corpus.root.rglob("*") if p.is_file()]
    assert result.stats.files == len(files) == 19 + 7 + 4 + FILLER_FILES
    assert result.stats.bytes == sum(p.stat().st_size for p in files)


@pytest.mark.parametrize(
    ("engine", "jobs"), [("re", 1), ("hyperscan", 2), ("re", 2)], ids=["re", "hs-j2", "re-j2"]
)
def test_engines_and_parallel_scan_agree(
    corpus: Corpus, cache_dir: Path, result: ScanResult, engine: str, jobs: int
) -> None:
    assert result.engine == "hyperscan"
    other = _scan(corpus, cache_dir, engine=engine, jobs=jobs)
    assert other.engine == engine
    assert _canonical(corpus, other) == _canonical(corpus, result)
    assert other.stats.files == result.stats.files
    assert other.stats.rejected == result.stats.rejected
    # the order of findings is part of the contract too (worst first, then path, line)
    assert [f.fingerprint for f in other.findings] == [f.fingerprint for f in result.findings]
