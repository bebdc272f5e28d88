"""Config: the node's current config (the newest stored version, else the file ABIDANCE_CONFIG names),
editable; validated with the node's own schema; saved as a new version in the store with a diff."""

import difflib
from pathlib import Path

import streamlit as st

from abidance.config import to_toml
from streamlit_app import common, queries

st.title("Config")
common.require_store()


def validate(text: str, base_dir: Path) -> tuple[object | None, list[str]]:
    """(config, []) or (None, every error, each naming its key). The dashboard's own environment
    overrides are not applied: they are not the node's."""
    from abidance.config import ConfigError, parse_config

    try:
        return parse_config(text, base_dir, env={}, source="edited config"), []
    except ConfigError as exc:
        return None, exc.errors


def diff(old: str, new: str, old_name: str, new_name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=old_name, tofile=new_name))


s = common.settings()
file_text = None
if s.config_path is not None:
    try:
        file_text = s.config_path.read_text(encoding="utf-8")
    except OSError as exc:
        st.warning(f"Cannot read {s.config_path}: {exc}")
base_dir = s.config_path.parent if s.config_path is not None else Path.cwd()
latest = common.slow("q.latest_config")

if latest is not None:
    current, current_name = latest["text"], f"version {latest['version']}"
    st.caption(f"Showing stored **version {latest['version']}** by {latest['author']} at {common.fmt_ts(latest['ts'])}"
               + (f": {latest['comment']}" if latest["comment"] else ""))
    if file_text is not None and file_text != latest["text"]:
        st.caption(f"The file {s.config_path} differs from this version (the node reads the stored version "
                   "when it applies dashboard edits).")
elif file_text is not None:
    current, current_name = file_text, str(s.config_path)
    st.caption(f"Showing the file {s.config_path}; no version stored yet (saving creates version 1).")
else:
    from abidance.config import NodeConfig

    current, current_name = to_toml(NodeConfig()), "defaults"
    common.no_data("no config stored and ABIDANCE_CONFIG is not set; the editor starts from the defaults")

text = st.text_area("Config (TOML)", value=common.mask_secrets(current), height=520, key="config_text")
comment = st.text_input("Comment for this version", key="config_comment", placeholder="what changed and why")
b1, b2, _ = st.columns([1, 1, 4])
do_validate = b1.button("Validate", key="config_validate")
do_save = b2.button("Save as new version", type="primary", key="config_save")

if do_validate or do_save:
    cfg, errors = validate(text, base_dir)
    if errors:
        st.error(f"{len(errors)} error{'s' * (len(errors) != 1)}: nothing saved" if do_save else
                 f"{len(errors)} error{'s' * (len(errors) != 1)}")
        for e in errors:
            st.error(e)
    else:
        from abidance.config.cli import summary

        st.success("Valid.\n\n" + "\n".join(f"- {line.strip()}" for line in summary(cfg)))
        if do_save:
            try:
                version = queries.insert_config_version(common.reader(), text, comment.strip(), author="dashboard")
            except Exception as exc:  # noqa: BLE001 - shown to the operator
                st.error(f"Saving failed: {exc}")
            else:
                st.session_state["config_saved"] = (version, diff(current, text, current_name, f"version {version}"))
                common.clear_caches()
                st.rerun()

saved = st.session_state.pop("config_saved", None)
if saved:
    version, changes = saved
    st.success(f"Saved as version {version}. The node applies the changes that are safe without a restart "
               "and reports the ones that need one.")
    st.markdown("**Changes**")
    if changes:
        st.code(common.mask_secrets(changes), language="diff")
    else:
        st.caption("No change against the previous version.")

with st.expander("Effective values (every key, defaults filled in)"):
    cfg, errors = validate(text, base_dir)
    if cfg is None:
        st.caption("The text above does not validate.")
    else:
        st.code(common.mask_secrets(to_toml(cfg)), language="toml")

with st.expander("Version history"):
    versions = common.slow("q.config_versions", limit=200)
    if common.is_empty(versions):
        common.no_data("no stored config version")
    else:
        st.dataframe(versions[["version", "ts", "author", "comment"]], hide_index=True, key="versions_table")
        numbers = list(versions["version"])
        pick = st.selectbox("Version", numbers, key="config_version_pick")
        row = versions[versions["version"] == pick].iloc[0]
        older = versions[versions["version"] < pick]
        if len(older):
            prev = older.iloc[0]
            st.code(common.mask_secrets(diff(prev["text"], row["text"], f"version {prev['version']}",
                                             f"version {pick}")) or "(no change)", language="diff")
        else:
            st.code(common.mask_secrets(row["text"]), language="toml")
