# test/src/cli runs `metaloop watch` in a pseudo-terminal through util-linux's `script`
# (/usr/bin/script, Debian package bsdutils: essential, so normally present already).
if ! [ -x /usr/bin/script ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends bsdutils >/dev/null
fi
/usr/bin/script --version
