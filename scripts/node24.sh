# Source this file (`source scripts/node24.sh`) to put Node.js 24, the runtime pgkeep runs on
# everywhere (Lambda nodejs24.x, the task image, the test suite), first on PATH before `npm ci`.
#
# Why: `npm ci` itself runs on the machine's Node. It installs the project's own Node 24 (the
# optional dependency node-linux-<arch>, pinned in package.json) and every npm script then runs
# on it, so an older Node works. But npm checks each dependency's "engines" against the Node it
# runs on, and on Node 20 it warns about packages that need a newer one. With Node 24 first on
# PATH, npm runs on 24 too and nothing warns.
#
# Where Node 24 comes from, in order: the machine's `node` if it is already 24; the copy a
# previous `npm ci` installed under node_modules; else the same package from the npm registry,
# unpacked into .pgkeep-local/ after its integrity is checked against package-lock.json.
# Linux x64 and arm64 only (the platforms package.json pins); elsewhere, install Node 24 (nvm
# reads .nvmrc).

pgkeep_node24() {
  local root major arch package version integrity dir tmp packed
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if command -v node >/dev/null 2>&1; then
    major="$(node -p 'process.versions.node.split(".")[0]')"
    [ "$major" = "24" ] && return 0
  fi
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) arch=x64 ;;
    Linux-aarch64 | Linux-arm64) arch=arm64 ;;
    *)
      echo "node24: no pinned Node 24 package for $(uname -s) $(uname -m); install Node.js 24 (nvm install reads .nvmrc)" >&2
      return 1
      ;;
  esac
  package="node-linux-${arch}"
  if [ -x "$root/node_modules/$package/bin/node" ]; then
    export PATH="$root/node_modules/$package/bin:$PATH"
    return 0
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "node24: needs some Node.js with npm to fetch Node 24; install Node.js 24 (nvm install reads .nvmrc)" >&2
    return 1
  fi
  version="$(node -p "require('$root/package.json').optionalDependencies['$package']")"
  integrity="$(node -p "require('$root/package-lock.json').packages['node_modules/$package'].integrity")"
  dir="$root/.pgkeep-local/node/$package-$version"
  if [ ! -x "$dir/bin/node" ]; then
    tmp="$(mktemp -d)"
    packed="$(cd "$tmp" && npm pack --silent --json "$package@$version" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const [p]=JSON.parse(s);console.log(p.filename+" "+p.integrity)})')" || {
      echo "node24: could not download $package@$version from the npm registry" >&2
      rm -rf "$tmp"
      return 1
    }
    if [ "${packed#* }" != "$integrity" ]; then
      echo "node24: $package@$version from the registry does not match package-lock.json's integrity ($integrity); not using it" >&2
      rm -rf "$tmp"
      return 1
    fi
    mkdir -p "$dir"
    tar -xzf "$tmp/${packed%% *}" -C "$dir" --strip-components=1
    rm -rf "$tmp"
  fi
  export PATH="$dir/bin:$PATH"
}

if pgkeep_node24; then
  echo "node24: using $(command -v node) ($(node --version))" >&2
else
  return 1
fi
