# Abidance in a container: build the Cython core, run the `abidance` command.
# (Not built in CI here: no Docker engine on the build machines.)
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY abidance abidance
COPY ext ext
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
RUN useradd --create-home abidance
USER abidance
WORKDIR /home/abidance
ENTRYPOINT ["abidance"]
CMD ["replay"]
