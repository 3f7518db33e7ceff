from django.contrib.auth import views as auth_views
from django.urls import reverse


class LoginView(auth_views.LoginView):
    template_name = "ui/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self):
        return self.get_redirect_url() or reverse("ui:dashboard")


class LogoutView(auth_views.LogoutView):
    next_page = "ui:login"
