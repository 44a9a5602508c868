// The world's page: logs in with the SDK the server serves, draws the player's region, sends
// moves from the keyboard and chat from the chat box, and shows latency and the server's load.
// The messages are described in examples/world/README.md; the sizes mirror world-map.ts.
import { connect } from "/sdk/shardless-client.js";

const REGION_WIDTH = 600;
const REGION_HEIGHT = 400;
const REGIONS_X = 3;
const REGIONS_Y = 3;
const WORLD_WIDTH = REGION_WIDTH * REGIONS_X;
const WORLD_HEIGHT = REGION_HEIGHT * REGIONS_Y;
const GRAB_RANGE_UNITS = 40;
/** Below the server's limit (240 units/s), so that network jitter never gets a move refused. */
const WALK_UNITS_PER_S = 200;
const MOVE_EVERY_MS = 50;
const PING_EVERY_MS = 1000;
const STATUS_EVERY_MS = 1000;
const BUBBLE_MS = 5000;
const CHAT_LINES = 50;

const $ = (id) => document.getElementById(id);
const canvas = $("map");
const draw2d = canvas.getContext("2d");

/** Everything the page knows; the server is the authority, `me` is predicted while keys are held. */
const state = {
  session: null,
  name: "",
  region: null,
  me: null,
  players: new Map(),
  items: new Map(),
  pendingGrabs: new Set(),
  bubbles: new Map(),
  keys: new Set(),
  latencies: [],
  lastStatus: null,
};

// ---- login ------------------------------------------------------------------------------------

$("name").value = new URLSearchParams(location.search).get("name") ?? localStorage.getItem("world.name") ?? "";
$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  void logIn($("name").value.trim());
});

async function logIn(name) {
  $("login-error").textContent = "";
  if (name === "") return;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  try {
    const session = await connect({ url, name });
    localStorage.setItem("world.name", name);
    start(session);
  } catch (error) {
    $("login-error").textContent = error.name === "LoginFailedError" ? "That name is taken or not allowed." : `Cannot reach the server (${error.message}).`;
  }
}

function start(session) {
  state.session = session;
  state.name = session.name;
  $("login").hidden = true;
  $("chat-input").disabled = false;
  $("me").textContent = session.name;
  session.on("message", (bytes) => receive(bytes));
  session.on("channelMessage", (_channel, bytes) => receive(bytes));
  session.on("disconnect", () => stop("Disconnected from the server. Play again?"));
}

function stop(reason) {
  state.session = null;
  state.region = null;
  $("login").hidden = false;
  $("chat-input").disabled = true;
  $("login-error").textContent = reason;
}

function send(message) {
  if (state.session?.connected) state.session.send(JSON.stringify(message));
}

// ---- what the server says ---------------------------------------------------------------------

function receive(bytes) {
  const message = JSON.parse(new TextDecoder().decode(bytes));
  const handler = HANDLERS[message.t];
  if (handler !== undefined) handler(message);
  updatePanel();
}

const HANDLERS = {
  region(message) {
    state.region = { rx: message.rx, ry: message.ry };
    state.players = new Map([...message.players, message.you].map((player) => [player.name, player]));
    state.items = new Map(message.items.map((item) => [item.id, item]));
    state.pendingGrabs.clear();
    // Moves sent after the crossing are still on their way: keep the predicted spot if it is close.
    const you = message.you;
    state.me = state.me !== null && Math.hypot(state.me.x - you.x, state.me.y - you.y) < 60 ? { ...you, x: state.me.x, y: state.me.y } : { ...you };
  },
  enter({ player }) {
    state.players.set(player.name, player);
  },
  exit({ name }) {
    state.players.delete(name);
  },
  moved({ name, x, y }) {
    const player = state.players.get(name);
    if (player !== undefined) state.players.set(name, { ...player, x, y });
  },
  refused({ x, y }) {
    state.me = { ...state.me, x, y };
  },
  got({ item, score }) {
    state.pendingGrabs.delete(item);
    state.me = { ...state.me, score };
  },
  missed({ item }) {
    state.pendingGrabs.delete(item);
  },
  taken({ item, by, score }) {
    const taken = state.items.get(item);
    if (taken !== undefined) state.items.set(item, { ...taken, up: false });
    const player = state.players.get(by);
    if (player !== undefined) state.players.set(by, { ...player, score });
  },
  spawn({ item }) {
    state.items.set(item.id, item);
    grabWhatIsNear();
  },
  chat({ from, text }) {
    state.bubbles.set(from, { text, until: performance.now() + BUBBLE_MS });
    const line = document.createElement("li");
    const who = document.createElement("b");
    who.textContent = from;
    line.append(who, `: ${text}`);
    const log = $("chat-log");
    log.append(line);
    while (log.children.length > CHAT_LINES) log.firstElementChild.remove();
    log.scrollTop = log.scrollHeight;
  },
  pong({ id }) {
    state.latencies = [...state.latencies.slice(-4), performance.now() - id];
  },
};

// ---- keyboard and moves -----------------------------------------------------------------------

const DIRECTIONS = {
  ArrowLeft: [-1, 0], KeyA: [-1, 0],
  ArrowRight: [1, 0], KeyD: [1, 0],
  ArrowUp: [0, -1], KeyW: [0, -1],
  ArrowDown: [0, 1], KeyS: [0, 1],
};

document.addEventListener("keydown", (event) => {
  if (event.target === $("chat-input") || state.session === null) return;
  if (event.code === "Enter") {
    $("chat-input").focus();
    event.preventDefault();
  } else if (event.code in DIRECTIONS) {
    state.keys.add(event.code);
    event.preventDefault();
  }
});
document.addEventListener("keyup", (event) => state.keys.delete(event.code));
window.addEventListener("blur", () => state.keys.clear());

let lastStep = performance.now();
setInterval(() => {
  const now = performance.now();
  const elapsedMs = Math.min(now - lastStep, 2 * MOVE_EVERY_MS);
  lastStep = now;
  step(elapsedMs);
}, MOVE_EVERY_MS);

/** Moves the player by what the held keys ask for; the server checks and tells the others. */
function step(elapsedMs) {
  if (state.me === null || state.session === null || state.keys.size === 0) return;
  let dx = 0;
  let dy = 0;
  for (const key of state.keys) {
    dx += DIRECTIONS[key][0];
    dy += DIRECTIONS[key][1];
  }
  const length = Math.hypot(dx, dy);
  if (length === 0) return;
  const units = (WALK_UNITS_PER_S * elapsedMs) / 1000;
  const x = clamp(Math.round(state.me.x + (dx / length) * units), 0, WORLD_WIDTH - 1);
  const y = clamp(Math.round(state.me.y + (dy / length) * units), 0, WORLD_HEIGHT - 1);
  if (x === state.me.x && y === state.me.y) return;
  state.me = { ...state.me, x, y };
  send({ t: "move", x, y });
  grabWhatIsNear();
  updatePanel();
}

/** Asks for every item in reach that is up; the server decides who gets it. */
function grabWhatIsNear() {
  if (state.me === null) return;
  for (const item of state.items.values()) {
    if (!item.up || state.pendingGrabs.has(item.id)) continue;
    if (Math.hypot(item.x - state.me.x, item.y - state.me.y) > GRAB_RANGE_UNITS - 2) continue;
    state.pendingGrabs.add(item.id);
    send({ t: "grab", item: item.id });
  }
}

const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

// ---- chat -------------------------------------------------------------------------------------

$("chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("chat-input");
  const text = input.value.trim();
  const channel = state.region === null ? undefined : state.session?.channel(`region ${state.region.rx},${state.region.ry}`);
  if (text !== "" && channel !== undefined) channel.send(text);
  input.value = "";
  input.blur();
});
$("chat-input").addEventListener("keydown", (event) => {
  if (event.code === "Escape") event.target.blur();
});

// ---- latency and server load ------------------------------------------------------------------

setInterval(() => send({ t: "ping", id: performance.now() }), PING_EVERY_MS);

setInterval(async () => {
  try {
    const response = await fetch("/status", { cache: "no-store" });
    const status = await response.json();
    const last = state.lastStatus;
    if (last !== null && status.uptimeMs > last.uptimeMs) {
      const perSecond = ((status.committedTasks - last.committedTasks) * 1000) / (status.uptimeMs - last.uptimeMs);
      $("tasks").textContent = Math.round(perSecond).toLocaleString("en");
    }
    $("online").textContent = typeof status.sessions === "number" ? String(status.sessions) : "–";
    state.lastStatus = status;
  } catch {
    $("tasks").textContent = "–";
  }
}, STATUS_EVERY_MS);

// ---- the side panel ---------------------------------------------------------------------------

const minimap = $("minimap");
for (let ry = 0; ry < REGIONS_Y; ry++) {
  for (let rx = 0; rx < REGIONS_X; rx++) {
    const cell = document.createElement("div");
    cell.dataset.region = `${rx},${ry}`;
    minimap.append(cell);
  }
}

function updatePanel() {
  const here = state.region === null ? "" : `${state.region.rx},${state.region.ry}`;
  $("region").textContent = here || "–";
  $("score").textContent = String(state.me?.score ?? 0);
  for (const cell of minimap.children) cell.classList.toggle("here", cell.dataset.region === here);
  if (state.latencies.length > 0) $("latency").textContent = `${(state.latencies.reduce((a, b) => a + b, 0) / state.latencies.length).toFixed(1)} ms`;
  const list = $("players");
  list.replaceChildren(...[...visiblePlayers()].sort((a, b) => b.score - a.score || a.name.localeCompare(b.name)).map(playerRow));
}

/** Players of the region, with this page's own player where it predicts it to be. */
function* visiblePlayers() {
  for (const player of state.players.values()) yield player.name === state.name && state.me !== null ? state.me : player;
}

function playerRow(player) {
  const row = document.createElement("li");
  row.dataset.name = player.name;
  row.dataset.x = String(player.x);
  row.dataset.y = String(player.y);
  row.classList.toggle("me", player.name === state.name);
  const name = document.createElement("span");
  name.textContent = player.name;
  const score = document.createElement("span");
  score.textContent = String(player.score);
  row.append(name, score);
  return row;
}

// ---- the map ----------------------------------------------------------------------------------

function render() {
  requestAnimationFrame(render);
  draw2d.clearRect(0, 0, canvas.width, canvas.height);
  if (state.region === null) return;
  const originX = state.region.rx * REGION_WIDTH;
  const originY = state.region.ry * REGION_HEIGHT;
  drawGround();
  drawEdges();
  for (const item of state.items.values()) drawItem(item, item.x - originX, item.y - originY);
  const now = performance.now();
  for (const player of visiblePlayers()) drawPlayer(player, player.x - originX, player.y - originY, now);
}
requestAnimationFrame(render);

function drawGround() {
  draw2d.strokeStyle = "rgb(255 255 255 / 4%)";
  draw2d.lineWidth = 1;
  for (let x = 50; x < REGION_WIDTH; x += 50) line(x, 0, x, REGION_HEIGHT);
  for (let y = 50; y < REGION_HEIGHT; y += 50) line(0, y, REGION_WIDTH, y);
  draw2d.fillStyle = "rgb(255 255 255 / 25%)";
  draw2d.font = "12px system-ui, sans-serif";
  draw2d.textAlign = "left";
  draw2d.fillText(`region ${state.region.rx},${state.region.ry}`, 8, 18);
}

/** The world's edge is a wall; a side that leads to another region is drawn open. */
function drawEdges() {
  const { rx, ry } = state.region;
  const sides = [
    [rx === 0, 0, 0, 0, REGION_HEIGHT],
    [rx === REGIONS_X - 1, REGION_WIDTH, 0, REGION_WIDTH, REGION_HEIGHT],
    [ry === 0, 0, 0, REGION_WIDTH, 0],
    [ry === REGIONS_Y - 1, 0, REGION_HEIGHT, REGION_WIDTH, REGION_HEIGHT],
  ];
  for (const [wall, x1, y1, x2, y2] of sides) {
    draw2d.strokeStyle = wall ? "#5b6b7c" : "rgb(245 197 66 / 35%)";
    draw2d.lineWidth = wall ? 6 : 2;
    draw2d.setLineDash(wall ? [] : [6, 6]);
    line(x1, y1, x2, y2);
  }
  draw2d.setLineDash([]);
}

function drawItem(item, x, y) {
  draw2d.globalAlpha = item.up ? 1 : 0.2;
  draw2d.beginPath();
  if (item.kind === "gem") {
    draw2d.moveTo(x, y - 10);
    draw2d.lineTo(x + 8, y);
    draw2d.lineTo(x, y + 10);
    draw2d.lineTo(x - 8, y);
    draw2d.closePath();
    draw2d.fillStyle = "#5ee6f0";
  } else {
    draw2d.arc(x, y, 7, 0, 2 * Math.PI);
    draw2d.fillStyle = "#f5c542";
  }
  draw2d.fill();
  draw2d.globalAlpha = 1;
}

function drawPlayer(player, x, y, now) {
  const mine = player.name === state.name;
  draw2d.beginPath();
  draw2d.arc(x, y, 11, 0, 2 * Math.PI);
  draw2d.fillStyle = colourOf(player.name);
  draw2d.fill();
  draw2d.lineWidth = mine ? 3 : 1.5;
  draw2d.strokeStyle = mine ? "#ffffff" : "rgb(0 0 0 / 50%)";
  draw2d.stroke();
  draw2d.textAlign = "center";
  draw2d.font = "12px system-ui, sans-serif";
  draw2d.fillStyle = "#e8eef5";
  draw2d.fillText(`${player.name} · ${player.score}`, x, y + 26);
  const bubble = state.bubbles.get(player.name);
  if (bubble !== undefined && bubble.until > now) drawBubble(bubble.text, x, y - 20);
}

function drawBubble(text, x, y) {
  const shown = text.length > 40 ? `${text.slice(0, 39)}…` : text;
  draw2d.font = "12px system-ui, sans-serif";
  const width = draw2d.measureText(shown).width + 12;
  draw2d.fillStyle = "rgb(255 255 255 / 90%)";
  draw2d.beginPath();
  draw2d.roundRect(x - width / 2, y - 20, width, 18, 6);
  draw2d.fill();
  draw2d.fillStyle = "#111820";
  draw2d.fillText(shown, x, y - 7);
}

function line(x1, y1, x2, y2) {
  draw2d.beginPath();
  draw2d.moveTo(x1, y1);
  draw2d.lineTo(x2, y2);
  draw2d.stroke();
}

/** A steady colour per name, so that a player looks the same on every screen. */
function colourOf(name) {
  let hash = 0;
  for (const char of name) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return `hsl(${hash % 360} 65% 55%)`;
}
