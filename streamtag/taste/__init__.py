"""Personal taste profile: a small model on the CRNN's embedding, fitted to the user's likes and dislikes.

fit.py      labels and the pure fit: logit/sigmoid, the crowd read-out (ridge) and the logistic fit on top of
            it, TasteModel, cross-validated AUC (numpy only; the model is described there)
profile.py  Profile: the labels of one embedding model and their current fit, the Tagger's ``taste_scorer``,
            and its JSON document (ModelIdentity, base64 embeddings)
store.py    the profile file: where it lives, atomic writes, the lock between processes, corrupt and
            mismatched files
teacher.py  LiveTeacher: labels the last seconds of live audio and saves the profile at once
"""
