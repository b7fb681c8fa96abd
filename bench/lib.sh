# Shared by the bench scripts (source it after `cd` to the repository's root).

# A TCP port free on 127.0.0.1 now (for servers that cannot take port 0).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The port of the first http://127.0.0.1:PORT a server printed to FILE (waits up to 20 s).
url_port_of() {
  for _ in $(seq 400); do
    grep -o 'http://127.0.0.1:[0-9]*' "$1" 2>/dev/null | head -1 | grep -o '[0-9]*$' && return
    sleep 0.05
  done
  echo "no port in $1" >&2
  exit 1
}

# A throwaway CA and a server certificate for 127.0.0.1 signed by it, in DIR: ca.crt, ca.key,
# server.crt, server.key (EC P-256, one day; the openssl command).
make_test_ca() {
  (
    cd "$1"
    EC=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${EC[@]}" -days 1 -subj "/CN=bench CA" -keyout ca.key -out ca.crt
    echo "subjectAltName=IP:127.0.0.1" > server.ext
    openssl req "${EC[@]}" -subj "/CN=bench" -keyout server.key -out server.csr
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
      -extfile server.ext -out server.crt
  ) >/dev/null 2>&1
}
