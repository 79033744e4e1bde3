"""Dependencies shared by every router."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cloudcart.composition import Services
from cloudcart.core.settings import Settings


def get_services(request: Request) -> Services:
    """The app's adapters (built by the app factory, stored on `app.state.services`)."""
    services: Services = request.app.state.services
    return services


def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    services: Services = request.app.state.services
    return services.settings


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
