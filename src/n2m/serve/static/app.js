// n2m web page: reads /v1/model, builds the form its schema calls for, shows results by layout. With a corpus
// loaded (`n2m serve MODEL --corpus FILE`) it opens in search mode (also at /search; `?mode=predict` leaves it).
// Plain DOM, no dependencies; user text is only ever set with textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, children = []) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
};
const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs) => {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
};

// The page speaks the browser's language (Korean or English); `?lang=en` or `?lang=ko` chooses.
const STRINGS = {
  en: {
    fields: {
      similarity: { text: "Sentence A", text_pair: "Sentence B" },
      caption: { image: "Image" },
      default: { text: "Text", text_pair: "Second text" },
    },
    layouts: {
      similarity: "Semantic similarity of two sentences",
      score: "A score for a text",
      classes: "Which class a text belongs to",
      labels: "Which labels apply to a text",
      entities: "Entities in a text",
      tags: "A tag for every word",
      generation: "Text generation",
      caption: "A caption for an image",
      json: "Model output",
    },
    predict: "Predict",
    typeSentence: "Type a sentence…",
    typeText: "Type a text…",
    dropImage: "Drop an image here, or choose one",
    notImage: (name) => `${name} is not an image.`,
    caption: "Caption",
    unreachable: (err) => `Could not reach the server: ${err}`,
    fillIn: (name) => `Please fill in “${name}”.`,
    failed: (err) => `Request failed: ${err}`,
    similarity: "Similarity",
    score: "Score",
    meaning: (low, high) => `${low}: unrelated · ${high}: the same meaning`,
    scale: (low, high) => `${low}: the lowest · ${high}: the highest score it was trained on`,
    noLabel: "No label above the threshold",
    entities: (n) => (n ? `${n} entit${n === 1 ? "y" : "ies"}` : "No entities"),
    tags: "Tags",
    output: "Output",
    truncated: (n) => `This text is longer than the model reads (${n} tokens): only its start counted.`,
    search: "Search",
    modePredict: "Predict",
    question: "Question",
    typeQuestion: "Type a question…",
    searchTask: (n, source) => `Semantic search over ${n.toLocaleString("en")} documents (${source})`,
    topK: "Hits",
    hits: (n, of) => `The ${n} nearest of ${of.toLocaleString("en")} documents`,
    cosine: "cosine similarity",
    queryTruncated: (n) => `The question is longer than the model reads (${n} tokens): only its start counted.`,
  },
  ko: {
    fields: {
      similarity: { text: "문장 A", text_pair: "문장 B" },
      caption: { image: "이미지" },
      default: { text: "텍스트", text_pair: "두 번째 텍스트" },
    },
    layouts: {
      similarity: "두 문장의 의미가 얼마나 비슷한지",
      score: "텍스트의 점수",
      classes: "텍스트가 속하는 분류",
      labels: "텍스트에 해당하는 레이블",
      entities: "텍스트 속 개체명",
      tags: "단어마다 태그",
      generation: "텍스트 생성",
      caption: "이미지를 설명하는 캡션",
      json: "모델 출력",
    },
    predict: "예측",
    typeSentence: "문장을 입력하세요…",
    typeText: "텍스트를 입력하세요…",
    dropImage: "이미지를 여기에 끌어다 놓거나 선택하세요",
    notImage: (name) => `${name}은(는) 이미지가 아닙니다.`,
    caption: "캡션",
    unreachable: (err) => `서버에 연결할 수 없습니다: ${err}`,
    fillIn: (name) => `“${name}”을(를) 입력해 주세요.`,
    failed: (err) => `요청이 실패했습니다: ${err}`,
    similarity: "유사도",
    score: "점수",
    meaning: (low, high) => `${low}: 관련 없음 · ${high}: 같은 뜻`,
    scale: (low, high) => `${low}: 가장 낮음 · ${high}: 가장 높음 (학습한 점수의 범위)`,
    noLabel: "기준을 넘는 레이블이 없습니다",
    entities: (n) => (n ? `개체명 ${n}개` : "개체명 없음"),
    tags: "태그",
    output: "출력",
    truncated: (n) => `텍스트가 모델이 읽는 길이(${n} 토큰)보다 길어 앞부분만 반영되었습니다.`,
    search: "검색",
    modePredict: "예측",
    question: "질문",
    typeQuestion: "질문을 입력하세요…",
    searchTask: (n, source) => `문서 ${n.toLocaleString("ko")}개에서 의미 검색 (${source})`,
    topK: "결과 수",
    hits: (n, of) => `문서 ${of.toLocaleString("ko")}개 중 가장 가까운 ${n}개`,
    cosine: "코사인 유사도",
    queryTruncated: (n) => `질문이 모델이 읽는 길이(${n} 토큰)보다 길어 앞부분만 반영되었습니다.`,
  },
};
const asked = new URLSearchParams(location.search).get("lang") || navigator.language || "en";
const LANG = asked.toLowerCase().startsWith("ko") ? "ko" : "en";
const T = STRINGS[LANG];
const fieldLabels = () => T.fields[model.layout] || T.fields.default;

let model = null;
let mode = "predict"; // or "search": the corpus loaded at start-up

async function init() {
  document.documentElement.lang = LANG;
  $("submit").textContent = T.predict;
  try {
    const response = await fetch("/v1/model");
    model = await response.json();
  } catch (err) {
    showError(T.unreachable(err));
    return;
  }
  document.title = `${model.title || model.name} · n2m`;
  $("model-name").textContent = model.title || model.name;
  const asks = new URLSearchParams(location.search).get("mode");
  if (model.corpus && asks !== "predict" && (asks === "search" || ["/", "/search"].includes(location.pathname)))
    mode = "search";
  const what = mode === "search" ? T.searchTask(model.corpus.documents, model.corpus.source) : T.layouts[model.layout];
  const parts = [what || model.task, `${model.shape} · ${model.task}`];
  if (model.backbone) parts.push(model.backbone.split("/").filter(Boolean).pop()); // a folder: its name
  parts.push(model.backend);
  $("model-task").textContent = parts.join(" · ");
  if (model.corpus) showModes();
  if (mode === "search") buildSearchForm();
  else buildPredictForm();
  $("submit").disabled = false;
  $("form").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  $("form").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) submit();
  });
}

function showModes() {
  const links = [
    ["search", "/search", T.search],
    ["predict", "/?mode=predict", T.modePredict],
  ].map(([name, href, text]) => {
    const link = el("a", { href, text, "data-mode": name });
    if (name === mode) link.setAttribute("aria-current", "page");
    return link;
  });
  $("modes").replaceChildren(...links);
  $("modes").hidden = false;
}

function buildSearchForm() {
  $("submit").textContent = T.search;
  $("api").textContent = "POST /v1/search";
  const area = el("textarea", { id: "query", name: "query", rows: "2", maxlength: String(model.limits.max_chars || 2000) });
  area.placeholder = T.typeQuestion;
  const choices = [5, 10, 20].filter((k) => k <= (model.limits.max_top_k || 100));
  const topK = el(
    "select",
    { id: "top-k", name: "top_k" },
    choices.map((k) => el("option", { value: String(k), text: String(k) })),
  );
  $("fields").append(
    el("div", { class: "field" }, [el("label", { for: "query", text: T.question }), area]),
    el("div", { class: "field inline" }, [el("label", { for: "top-k", text: T.topK }), topK]),
  );
  area.focus();
}

function buildPredictForm() {
  const labels = fieldLabels();
  const fields = $("fields");
  if (model.layout === "caption") return buildImageField(labels);
  for (const name of model.inputs) {
    const id = `input-${name}`;
    const area = el("textarea", { id, name, rows: "3", maxlength: String(model.limits.max_chars || 2000) });
    area.placeholder = model.layout === "similarity" ? T.typeSentence : T.typeText;
    const count = el("div", { class: "count muted", text: "" });
    area.addEventListener("input", () => {
      count.textContent = area.value.length > 200 ? `${area.value.length} / ${model.limits.max_chars}` : "";
    });
    fields.append(el("div", { class: "field" }, [el("label", { for: id, text: labels[name] || name }), area, count]));
  }
}

// A captioner's form: a drop zone with a file chooser; the chosen image is shown and kept as a data: URL, which
// the API takes as it is (base64 after the comma).
let imageData = "";
function buildImageField(labels) {
  const input = el("input", { id: "input-image", name: "image", type: "file", accept: "image/*" });
  const preview = el("img", { id: "preview", alt: "", hidden: "" });
  const hint = el("span", { class: "muted", text: T.dropImage });
  const zone = el("label", { id: "drop", class: "drop", for: "input-image" }, [preview, hint, input]);
  const show = (file) => {
    if (!file) return;
    if (!file.type.startsWith("image/")) {
      showError(T.notImage(file.name));
      return;
    }
    $("error").hidden = true;
    const reader = new FileReader();
    reader.onload = () => {
      imageData = String(reader.result);
      preview.src = imageData;
      preview.hidden = false;
      hint.hidden = true;
    };
    reader.readAsDataURL(file);
  };
  input.addEventListener("change", () => show(input.files[0]));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    show(event.dataTransfer.files[0]);
  });
  $("fields").append(el("div", { class: "field" }, [el("span", { class: "label", text: labels.image }), zone]));
}

function readInputs() {
  if (model.layout === "caption") return { image: imageData };
  const inputs = {};
  for (const name of model.inputs) inputs[name] = $(`input-${name}`).value;
  return inputs;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

async function submit() {
  if (mode === "search") return search();
  const button = $("submit");
  if (button.disabled) return;
  $("error").hidden = true;
  const inputs = readInputs();
  const empty = model.inputs.find((name) => !inputs[name].trim());
  if (empty) {
    showError(T.fillIn(fieldLabels()[empty] || empty));
    if (model.layout !== "caption") $(`input-${empty}`).focus();
    return;
  }
  button.disabled = true;
  const started = performance.now();
  try {
    const generates = model.layout === "generation" || model.layout === "caption";
    if (generates && model.streaming) await streamGeneration(inputs);
    else {
      const response = await fetch("/v1/predict", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ inputs }),
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        showError(`${response.status}: ${body.error || response.statusText}`);
        return;
      }
      render(body.predictions[0], inputs);
      if ((body.truncated || []).length) {
        const notice = el("p", { id: "truncated", class: "warning", text: T.truncated(model.limits.max_tokens) });
        $("result").querySelector(".card").append(notice);
      }
    }
    $("timing").textContent = `${Math.round(performance.now() - started)} ms`;
  } catch (err) {
    showError(T.failed(err));
  } finally {
    button.disabled = false;
  }
}

async function search() {
  const button = $("submit");
  if (button.disabled) return;
  $("error").hidden = true;
  const query = $("query").value;
  if (!query.trim()) {
    showError(T.fillIn(T.question));
    $("query").focus();
    return;
  }
  button.disabled = true;
  const started = performance.now();
  try {
    const response = await fetch("/v1/search", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ query, top_k: Number($("top-k").value) }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      showError(`${response.status}: ${body.error || response.statusText}`);
      return;
    }
    renderHits(body);
    $("timing").textContent = `${Math.round(performance.now() - started)} ms`;
  } catch (err) {
    showError(T.failed(err));
  } finally {
    button.disabled = false;
  }
}

function renderHits(answer) {
  const list = el(
    "ol",
    { id: "hits", class: "hits" },
    answer.hits.map((hit) => {
      const fill = el("span");
      fill.style.width = `${(100 * Math.max(0, hit.score)).toFixed(1)}%`;
      return el("li", { "data-id": hit.id, "data-score": String(hit.score) }, [
        el("div", { class: "hit-head" }, [
          el("span", { class: "score", title: T.cosine, text: hit.score.toFixed(3) }),
          el("span", { class: "bar" }, [fill]),
          el("span", { class: "doc-id muted", text: `#${hit.id}` }),
        ]),
        el("p", { class: "hit-text", text: hit.text }),
      ]);
    }),
  );
  const notice = answer.truncated
    ? [el("p", { id: "truncated", class: "warning", text: T.queryTruncated(model.limits.max_tokens) })]
    : [];
  card(T.hits(answer.hits.length, answer.documents), list, ...notice);
}

function card(title, ...children) {
  const result = $("result");
  const layout = mode === "search" ? "search" : model.layout;
  result.replaceChildren(el("div", { class: "card", "data-layout": layout }, [el("h2", { text: title }), ...children]));
}

function render(prediction, inputs) {
  switch (model.layout) {
    case "similarity":
    case "score":
      return renderGauge(prediction.score);
    case "classes":
    case "labels":
      return renderBars(prediction);
    case "entities":
      return renderEntities(prediction, inputs[model.inputs[0]]);
    case "tags":
      return renderTags(prediction);
    case "generation":
    case "caption":
      return renderGenerated(prediction.text ?? JSON.stringify(prediction));
    default:
      return card(T.output, el("pre", { text: JSON.stringify(prediction, null, 2) }));
  }
}

function renderGauge(score) {
  const [low, high] = model.score_range || [0, 1];
  const share = Math.min(1, Math.max(0, (score - low) / (high - low)));
  const arc = "M 20 110 A 90 90 0 0 1 200 110";
  const length = Math.PI * 90;
  const picture = svg("svg", { viewBox: "0 0 220 120", role: "img", "aria-label": `score ${score.toFixed(2)}` });
  picture.append(svg("path", { d: arc, class: "track", fill: "none", "stroke-width": "18", "stroke-linecap": "round" }));
  picture.append(
    svg("path", {
      d: arc,
      class: "value",
      fill: "none",
      "stroke-width": "18",
      "stroke-linecap": "round",
      "stroke-dasharray": `${length}`,
      "stroke-dashoffset": `${length * (1 - share)}`,
    }),
  );
  const reading = el("output", { id: "score", class: "reading", "data-value": String(score), text: score.toFixed(2) });
  const scale = el("div", { class: "scale muted" }, [el("span", { text: String(low) }), el("span", { text: String(high) })]);
  // what the ends of the scale mean: for two sentences, how alike they are; else the range of the training scores
  const similarity = model.layout === "similarity";
  const explain = similarity ? T.meaning : T.scale;
  const meaning = model.score_range ? [el("p", { class: "meaning muted", text: explain(low, high) })] : [];
  card(similarity ? T.similarity : T.score, el("div", { class: "gauge" }, [picture, reading, scale]), ...meaning);
}

function renderBars(prediction) {
  const chosen = new Set(prediction.labels || (prediction.label !== undefined ? [prediction.label] : []));
  const rows = Object.entries(prediction.probabilities).sort((a, b) => b[1] - a[1]);
  const list = el(
    "ul",
    { class: "bars" },
    rows.map(([name, p]) => {
      const fill = el("span");
      fill.style.width = `${(100 * p).toFixed(1)}%`;
      return el("li", { class: chosen.has(name) ? "chosen" : "", "data-label": name, "data-p": String(p) }, [
        el("span", { class: "name", text: name }),
        el("span", { class: "bar" }, [fill]),
        el("span", { class: "pct", text: `${(100 * p).toFixed(1)}%` }),
      ]);
    }),
  );
  const title = chosen.size ? [...chosen].join(", ") : T.noLabel;
  card(title, list);
  $("result").querySelector("h2").id = "top-label";
}

function hue(type) {
  let h = 0;
  for (const c of type) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
}

function renderEntities(prediction, text) {
  const entities = [...(prediction.entities || [])].sort((a, b) => a.start - b.start);
  const paragraph = el("p", { class: "highlighted" });
  // offsets count code points (Python's str); JS strings count UTF-16 units, so slice by code point
  const chars = Array.from(text);
  const slice = (a, b) => chars.slice(a, b).join("");
  let at = 0;
  for (const entity of entities) {
    if (entity.start < at) continue; // overlapping spans: keep the first
    paragraph.append(slice(at, entity.start));
    const type = entity.type ?? entity.label ?? "?";
    const mark = el("mark", { "data-type": type, title: `${type} ${Math.round(100 * (entity.score ?? 1))}%` }, [
      slice(entity.start, entity.end),
      el("small", { text: type }),
    ]);
    mark.style.background = `hsl(${hue(type)} 80% 60% / .35)`;
    paragraph.append(mark);
    at = entity.end;
  }
  paragraph.append(slice(at));
  card(T.entities(entities.length), paragraph);
}

function renderTags(prediction) {
  const words = el(
    "div",
    { class: "words" },
    (prediction.words || []).map((w) => el("span", {}, [w.text, el("small", { text: w.tag })])),
  );
  card(T.tags, words);
}

function renderGenerated(text, streaming = false) {
  const out = el("div", { id: "generated", class: streaming ? "generated streaming" : "generated", text });
  card(model.layout === "caption" ? T.caption : T.output, out);
  return out;
}

async function streamGeneration(inputs) {
  const response = await fetch("/v1/stream", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ inputs }),
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    showError(`${response.status}: ${body.error || response.statusText}`);
    return;
  }
  const out = renderGenerated("", true);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event.type === "error") showError(event.data.error);
      else if (event.type === "done") out.textContent = event.data.text ?? out.textContent;
      else out.textContent += event.data.text ?? "";
    }
  }
  out.classList.remove("streaming");
}

function parseEvent(block) {
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) type = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  try {
    return { type, data: JSON.parse(data.join("\n")) };
  } catch {
    return { type, data: { text: data.join("\n") } };
  }
}

init();
