// Uploads one file with the published @kapso/whatsapp-cloud-api client,
// unchanged, configured only through its own options: the Graph API base URL
// and version point it at a SigFollow ingest address instead of Meta.
//
//   WHATSAPP_TOKEN=<api key> node index.mjs BASE_URL VERSION PHONE_NUMBER_ID FILE MIME_TYPE [blob|buffer]
//
// "blob" (the default) hands the library a typed Blob and a file name, as
// its README does; "buffer" hands it the raw bytes, which it sends as an
// untyped part named "blob".
//
// Prints one JSON line: {"response": <what upload() returned>} and exits 0,
// or {"error": {...}} and exits 2 when upload() threw.
import { readFile } from "node:fs/promises";
import { basename } from "node:path";

import { WhatsAppClient } from "@kapso/whatsapp-cloud-api";

const [baseUrl, graphVersion, phoneNumberId, path, mimeType, mode = "blob", typeField = mimeType] = process.argv.slice(2);
if (!mimeType || !process.env.WHATSAPP_TOKEN || !["blob", "buffer"].includes(mode)) {
  console.error("usage: WHATSAPP_TOKEN=<key> node index.mjs BASE_URL VERSION PHONE_NUMBER_ID FILE MIME_TYPE [blob|buffer] [TYPE_FIELD]");
  process.exit(64);
}

const client = new WhatsAppClient({ baseUrl, graphVersion, accessToken: process.env.WHATSAPP_TOKEN });
const bytes = await readFile(path);
const input =
  mode === "blob"
    ? { phoneNumberId, type: typeField, file: new Blob([bytes], { type: mimeType }), fileName: basename(path) }
    : { phoneNumberId, type: typeField, file: bytes };

try {
  const response = await client.media.upload(input);
  console.log(JSON.stringify({ response }));
} catch (err) {
  console.log(
    JSON.stringify({
      error: {
        name: err?.name,
        message: err?.message,
        httpStatus: err?.httpStatus,
        code: err?.code,
        category: err?.category,
        retry: err?.retry,
        raw: err?.raw,
      },
    }),
  );
  process.exit(2);
}
