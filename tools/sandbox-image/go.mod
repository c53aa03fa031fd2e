// The e2e sandbox image's only program (tests/e2e/images.py builds it into an OCI image).
// Standard library only, so it builds offline and reproducibly.
module sandbox-infra/tools/sandbox-image

go 1.26.0
