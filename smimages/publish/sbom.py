"""A software bill of materials made from what an image really holds: the Python packages as pip
sees them inside the image (`pip inspect`) and the Debian packages as dpkg sees them, written as
CycloneDX 1.5 JSON. (No SBOM generator that reads images, such as syft, can be installed here from
PyPI or Debian; reading the image's own package databases is what those tools do for these two.)"""

import json
import subprocess
import uuid

from smimages.catalog import DOCKER

SCRIPT = "pip inspect --local 2>/dev/null; echo '=====dpkg'; dpkg-query -W -f '${Package}\\t${Version}\\t${Architecture}\\n'"


def inventory(ref):
    """(python packages [{name, version, license}], debian packages [{name, version, arch}])."""
    out = subprocess.run([DOCKER, "run", "--rm", "--entrypoint", "/bin/sh", ref, "-c", SCRIPT],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    pip_part, _, dpkg_part = out.partition("=====dpkg\n")
    python = []
    for item in json.loads(pip_part)["installed"]:
        meta = item["metadata"]
        python.append({"name": meta["name"], "version": meta["version"],
                       "license": meta.get("license_expression") or (meta.get("license") or "").split("\n")[0]})
    debian = [dict(zip(("name", "version", "arch"), line.split("\t"))) for line in dpkg_part.splitlines() if line]
    return python, debian


def cyclonedx(ref, labels, python, debian):
    components = [{"type": "library", "name": p["name"], "version": p["version"],
                   "purl": f"pkg:pypi/{p['name'].lower()}@{p['version']}",
                   **({"licenses": [{"license": {"name": p["license"][:200]}}]} if p["license"] else {})}
                  for p in sorted(python, key=lambda p: p["name"].lower())]
    components += [{"type": "library", "name": d["name"], "version": d["version"],
                    "purl": f"pkg:deb/debian/{d['name']}@{d['version']}?arch={d['arch']}"}
                   for d in sorted(debian, key=lambda d: d["name"])]
    return {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "metadata": {"component": {"type": "container", "name": ref,
                                   "version": labels.get("org.opencontainers.image.version", ""),
                                   "properties": [{"name": k, "value": v} for k, v in sorted(labels.items())]}},
        "components": components,
    }
