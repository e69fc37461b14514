"""LiveFusion's PySide6 front end: the preview window, hotkeys, source faces and dialogs.

It sits on top of the engine (`livefusion.app.LiveApp`) and only ever talks to it through the
settings box, the app's control methods and the pipeline's command path; the engine never
imports Qt. Start it with `livefusion_ui.main.run(config)`.
"""
