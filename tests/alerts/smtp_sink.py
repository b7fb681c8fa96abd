"""A local SMTP sink for the alert tests: accepts every mail and appends it to a JSON-lines file.

    python3 smtp_sink.py --out mails.jsonl

Listens on 127.0.0.1, port 0 (the OS picks), prints "smtp sink listening on 127.0.0.1:PORT"
once it accepts connections, and runs until SIGTERM or SIGINT. Each line of the output file is
{"mail_from", "rcpt_tos", "data"} (data: the message as received, dot-stuffing undone), written
and flushed before the server answers 250, so a client that got its reply finds its mail there.
Uses aiosmtpd (Debian: python3-aiosmtpd) for the SMTP side.
"""
import argparse
import asyncio
import json
import signal

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, path):
        self.out = open(path, "a", encoding="utf-8")

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if isinstance(data, bytes):
            data = data.decode("utf-8", errors="replace")
        self.out.write(json.dumps({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                                   "data": data}) + "\n")
        self.out.flush()
        return "250 Message accepted"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    sink = Sink(args.out)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, hostname="sink.test"), host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    print(f"smtp sink listening on 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
