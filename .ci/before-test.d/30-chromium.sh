# test/src/report loads `metaloop report` pages in headless Chromium (Debian's `chromium`) and
# measures the drawn plots; the test fails loudly when /usr/bin/chromium is missing.
if ! [ -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null
