from django.contrib.auth import views as auth_views
from django.urls import reverse

from appliance.core.auth_limits import login_retry_after
from appliance.core.login_views import refused_message


class LoginView(auth_views.LoginView):
    template_name = "ui/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self):
        return self.get_redirect_url() or reverse("ui:dashboard")

    def post(self, request, *args, **kwargs):
        wait = login_retry_after(request, request.POST.get("username"))
        if not wait:
            return super().post(request, *args, **kwargs)
        context = self.get_context_data(form=self.get_form_class()(request), refused=refused_message(wait))
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(wait)
        return response


class LogoutView(auth_views.LogoutView):
    next_page = "ui:login"
