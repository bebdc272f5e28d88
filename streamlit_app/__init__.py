"""The Streamlit dashboard: `streamlit run streamlit_app/app.py` (or `abidance dashboard`)."""
