// Preloaded with `node --require`: a server that asks for a port but no host listens on
// 127.0.0.1 instead of every interface, so a peer gateway stays on loopback.
"use strict";
const net = require("net");

const LOOPBACK = "127.0.0.1";
const originalListen = net.Server.prototype.listen;

net.Server.prototype.listen = function listenOnLoopback(...args) {
  const first = args[0];
  if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    if (args[1] === undefined || args[1] === null) {
      args[1] = LOOPBACK;
    } else if (typeof args[1] !== "string") {
      args.splice(1, 0, LOOPBACK);
    }
  } else if (first && typeof first === "object" && first.port !== undefined && !first.host) {
    args[0] = { ...first, host: LOOPBACK };
  }
  return originalListen.apply(this, args);
};
