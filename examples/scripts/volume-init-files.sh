# Create a volume's initial files: copy the state's files (when run as a
# `script` component, its data is at $UNIKUBE_DATA) and create the
# directories the application expects.
#
# interpreter: sh          image: any image with a POSIX shell (busybox; 10.213.0.1:5000/busybox:latest in the test cluster)
# variables:   DIRS    (default "uploads cache") directories to create, space-separated
#              MODE    (default 775) their mode
#              MARKER  (default .initialised) a file recording when this ran
# target:      the volume at $UNIKUBE_TARGET: a script component's pvc=NAME
#              option, or `helm state script run ... --pvc NAME`
#
# Runs under sh -e: the first failing command stops it.
set -u
: "${UNIKUBE_TARGET:?no volume at /unikube/target: map the component with pvc=NAME or pass --pvc NAME}"
if [ -n "${UNIKUBE_DATA:-}" ] && [ -d "$UNIKUBE_DATA" ]; then
  cp -R "$UNIKUBE_DATA"/. "$UNIKUBE_TARGET"/
  echo "copied $(find "$UNIKUBE_DATA" -type f | wc -l) files"
fi
set -f # DIRS is split into words, never globbed
for d in $DIRS; do
  mkdir -p "$UNIKUBE_TARGET/$d"
  chmod "$MODE" "$UNIKUBE_TARGET/$d"
done
date -u +%Y-%m-%dT%H:%M:%SZ > "$UNIKUBE_TARGET/$MARKER"
echo "initialised $UNIKUBE_TARGET"
