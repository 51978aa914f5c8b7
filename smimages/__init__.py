"""Everything in this repository that is not inside an image: the catalog of images, the build
driver, publishing, SBOMs, benchmarks, the seed replays and the test harness (smimages.testing)."""
