# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with the locked dev dependencies, then drop them.
FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# --ignore-scripts: onnxruntime-node's install script would download CUDA files; the CPU
# binaries ship inside the package. The build step below replaces the `prepare` script.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY scripts/build.mjs ./scripts/
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

# Runtime stage: no compiler, no dev dependencies, nothing fetched at run time.
FROM node:22-slim
ENV NODE_ENV=production
# Text models lowercase through a C library locale: skl2onnx's TF-IDF and CountVectorizer
# exports (and onnxruntime's StringNormalizer by default) ask for en_US.UTF-8, which the slim
# base lacks; without it such a model is MODEL_LOCALE_MISSING. The slim base has no fonts
# either: `nightscore drift --png` draws its chart's text with DejaVu Sans (observe/charts.ts),
# and without a font the PNG has lines and no labels.
RUN apt-get update && apt-get install -y --no-install-recommends locales fonts-dejavu-core \
  && sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen && locale-gen \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY models ./models
COPY jobs ./jobs
# /app stays root's and read-only to the process; it writes only its data folder (the demo's
# input and scores) and the model cache under the temp folder.
RUN mkdir -p /app/data && chown node:node /app/data
ENV NIGHTSCORE_MODEL_CACHE=/tmp/nightscore-models
USER node
EXPOSE 9464
# The same entry point the tests run: node dist/cli.js <command>. A 2 MB young-generation
# semi-space (V8's default grows to 16 MB) saves about 17 MB per process: a worker's main
# thread allocates little (it moves queue messages; scoring threads have their own heaps),
# and an in-process run measured no slower (npm run bench runs node with these flags).
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/dist/cli.js"]
CMD ["worker", "--jobs-dir", "/app/jobs"]
# Readiness, not liveness: a worker is healthy when Redis answers and its models load, which is
# what `depends_on: service_healthy` waits for. The other commands
# (ui, schedule sync --watch, one-shot seeds and backfills) say so in their compose service.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.NIGHTSCORE_HTTP_PORT || 9464) + '/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
