"""Publishes built images to ECR (make push REGION=... [ACCOUNT=...] [TAG=...] [IMAGE=...]).

For each image: create its ECR repository when missing (scan on push, tag mutability as set), log
in with an ECR authorization token, push an immutable build tag and a moving tag, print the URIs
and digests, and write them to a manifest (out/manifest.json). The account comes from STS unless
given. AWS_ENDPOINT_URL points the AWS calls elsewhere and --registry the pushes (for tests, or a
registry mirror).
"""

import argparse
import datetime
import json
import sys
from pathlib import Path

from smimages.catalog import ROOT, discover, products
from smimages.labels import revision
from smimages.publish import PublishError, registry
from smimages.publish.aws import Aws
from smimages.publish.tags import ecr_host, tags_for


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="*", help="images to push (default: every product image)")
    ap.add_argument("--region", required=True)
    ap.add_argument("--account", help="AWS account id (default: from STS)")
    ap.add_argument("--tag", help="the moving tag (default: <version>-py<python>-<cpu|gpu>)")
    ap.add_argument("--registry", help="push here instead of <account>.dkr.ecr.<region>.amazonaws.com")
    ap.add_argument("--prefix", default="sm-images", help="repository prefix (default: sm-images)")
    ap.add_argument("--mutability", default="MUTABLE", choices=["MUTABLE", "IMMUTABLE"],
                    help="tag mutability of repositories this creates; IMMUTABLE pushes the build tag only")
    ap.add_argument("--manifest", default=str(ROOT / "out" / "manifest.json"))
    ap.add_argument("--login-only", action="store_true", help="log the Docker engine in to the registry, push nothing")
    return ap.parse_args()


def chosen(names, images):
    """The images to publish: those named, else every product (never a build-only image)."""
    names = list(names) or products(images)
    unknown = [n for n in names if n not in images]
    if unknown:
        raise PublishError(f"no such image: {', '.join(unknown)} (have: {', '.join(images)})")
    return names


def publish(args):
    images = discover()
    names = chosen(args.images, images)
    aws = Aws(args.region)
    account = args.account or aws.account()
    user, password, token_host = aws.login(account)
    host = args.registry or ecr_host(account, args.region)
    docker = registry.client()
    registry.login(docker, user, password, host)
    print(f"==> logged in to {host} (account {account})", flush=True)
    if args.login_only:
        return None
    auth = {"username": user, "password": password}
    entries = []
    for name in names:
        image = images[name]
        repo_name = f"{args.prefix}/{name}"
        created = aws.ensure_repository(repo_name, args.mutability)
        print(f"==> {repo_name}: repository {'created' if created else 'exists'}; pushing to {host}", flush=True)
        pushed = []
        for tag in tags_for(image, args.tag, immutable_only=args.mutability == "IMMUTABLE"):
            digest = registry.push(docker, image.tag, f"{host}/{repo_name}", tag, auth)
            pushed.append({"uri": f"{host}/{repo_name}:{tag}", "digest": digest})
            print(f"    {host}/{repo_name}:{tag}  {digest}", flush=True)
        entries.append({"image": name, "repository": repo_name, "registry": host,
                        "uri_by_digest": f"{host}/{repo_name}@{pushed[0]['digest']}", "tags": pushed,
                        "image_id": docker.images.get(image.tag).id})
    return {"region": args.region, "account": account, "revision": revision(),
            "pushed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "images": entries}


def main():
    args = parse()
    try:
        manifest = publish(args)
    except PublishError as e:
        print(f"push failed: {e}", file=sys.stderr)
        return 1
    if manifest is None:
        return 0
    path = Path(args.manifest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"==> pushed {len(manifest['images'])} image(s); manifest: {path}")
    for entry in manifest["images"]:
        print(entry["uri_by_digest"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
