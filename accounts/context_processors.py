def preferences(request):
    user = getattr(request, "user", None)
    theme = user.theme if user is not None and user.is_authenticated else "system"
    return {"theme": theme}
