"""The installed stack is the one the project is built for (catches a broken or partial setup early)."""

import cv2


def test_opencv_major_and_ffmpeg():
    assert cv2.__version__.split(".")[0] == "5"
    assert "FFMPEG:                      YES" in cv2.getBuildInformation()


def test_zbar_system_library_present():
    from pyzbar import pyzbar  # raises ImportError "Unable to find zbar shared library" without libzbar0

    assert pyzbar.decode


def test_face_recognition_imports_with_its_models():
    import dlib
    import face_recognition
    import face_recognition_models

    assert face_recognition.face_encodings and dlib.__version__
    assert dlib.DLIB_USE_BLAS, "dlib must be the OpenBLAS source build (make setup), not the dlib-bin wheel"
    assert face_recognition_models.face_recognition_model_location().endswith(".dat")
