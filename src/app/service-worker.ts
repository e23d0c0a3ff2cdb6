// sw.js: caches every file of the app on install and answers from the cache first, so after one visit the page
// loads and classifies with the network off. The cache is named after the app's version hash: a rewritten app
// gets a new cache and the old one is deleted when the new worker activates.

/** The service worker's source for an app whose files (relative to sw.js) are `files`. */
export function serviceWorkerSource(version: string, files: readonly string[]): string {
  return `// Written by \`malaria app\`; version ${version}.
const PREFIX = 'malaria-app:' + self.registration.scope + ':';
const CACHE = PREFIX + ${JSON.stringify(version)};
const FILES = ${JSON.stringify(['./', ...files])};

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((key) => key.startsWith(PREFIX) && key !== CACHE).map((key) => caches.delete(key))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  if (event.request.method !== 'GET') return;
  event.respondWith(
    caches.open(CACHE)
      .then((cache) => cache.match(event.request, { ignoreSearch: true }))
      .then((cached) => cached || fetch(event.request)),
  );
});
`;
}
